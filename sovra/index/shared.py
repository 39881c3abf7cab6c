"""One embedded index, every face: the process that holds the qdrant-edge shard serves it to the
other Sovra processes on the same data dir.

The embedded engine locks its shard to one process. Rather than refusing the second process (the
chat while an ingest runs, a bot beside the API), the first process to open the shard becomes its
*host*: it serves the same ``Index`` object on 127.0.0.1 (``multiprocessing.connection``: a random
port, an HMAC challenge with a 32-byte key, one thread per guest connection). Every other process
is a *guest* and calls the host's index; searches and writes run in the host, whose
``VersionedIndex`` already serialises writes and lets searches run beside them. New documents are
therefore searchable in every process as soon as the ingest's write returns, without a restart.

- The key and the port are in ``<data dir>/qdrant/<collection>.host.json``, written with mode 0600:
  only the account that owns the data dir (which can read the shard anyway) can connect.
- When the host goes (it closes its index, exits or is killed), a guest's next call finds the
  connection gone, and the guest takes the shard itself or connects to whichever process did.
  Writes are durable in the shard's write-ahead log when a call returns, so nothing acknowledged is
  lost; an interrupted ingest is resumed by running it again.
- A host that is alive but does not answer (stopped, stuck in a call) is not waited on forever: a
  guest's call gives up after ``SOVRA_INDEX_HOST_TIMEOUT_S`` (default 300 s) with an error that
  names the process, and the next call tries again.
- A Qdrant server (``SOVRA_QDRANT_URL``) needs none of this and is used directly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

from sovra.errors import SovraError
from sovra.index.base import CollectionSettings
from sovra.index.edge import EdgeIndex, IndexInUseError

log = logging.getLogger(__name__)

# The Index protocol's methods, forwarded to the host.
_METHODS = (
    "ensure",
    "check",
    "upsert",
    "replace",
    "stored_vectors",
    "delete_document",
    "set_acl",
    "search",
    "count",
    "chunks",
    "optimize",
)
_CONNECT_WAIT_S = 15.0  # a host that holds the lock writes its address within moments


class _Host:
    """Serves one index on 127.0.0.1: a thread per guest connection, one call per message
    (``(method, args, kwargs)`` -> ``("ok", result)`` or ``("error", exception)``). Connections
    are authenticated by ``multiprocessing.connection``'s HMAC challenge with the host's key."""

    def __init__(self, index: EdgeIndex) -> None:
        self.index: EdgeIndex | None = index
        self.key = secrets.token_bytes(32)
        self.listener = Listener(("127.0.0.1", 0), authkey=self.key)
        self.address: tuple[str, int] = self.listener.address  # type: ignore[assignment]
        self.stopped = threading.Event()
        self.conns: set[Connection] = set()
        threading.Thread(target=self._accept, name="sovra-index-host", daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn = self.listener.accept()
            except Exception:  # a failed handshake (wrong key), or the listener closed by stop()
                continue
            self.conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="sovra-index-guest", daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        try:
            while not self.stopped.is_set():
                try:
                    name, args, kwargs = conn.recv()
                except Exception:  # the guest left, or stop() closed the connection under recv()
                    return
                index = self.index
                if index is None:
                    return  # closing the connection sends the guest to the next host
                if name not in _METHODS:
                    conn.send(("error", SovraError(f"no index method {name!r}")))
                    continue
                try:
                    reply: tuple[str, Any] = ("ok", getattr(index, name)(*args, **kwargs))
                except Exception as exc:  # the guest raises it as if the call were local
                    reply = ("error", exc)
                try:
                    conn.send(reply)
                except Exception as exc:  # an unpicklable exception: send its text
                    conn.send(("error", SovraError(str(reply[1]) if reply[0] == "error" else repr(exc))))
        finally:
            self.conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def stop(self) -> None:
        self.index = None
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        for conn in list(self.conns):
            with contextlib.suppress(OSError):
                conn.close()


class HostNotAnsweringError(SovraError):
    def __init__(self, pid: int | None, method: str, timeout_s: float) -> None:
        who = f"process {pid}" if pid else "the process"
        super().__init__(
            f"the embedded index is held by {who}, which did not answer {method!r} in {timeout_s:g} s",
            hint="it may be stopped or stuck: check it (or stop it and run again); "
            "SOVRA_INDEX_HOST_TIMEOUT_S sets the wait",
        )


class _Guest:
    """A connection per thread to the host, so that threads of a guest process run calls side by side."""

    def __init__(self, address: tuple[str, int], key: bytes, pid: int | None = None, timeout_s: float = 300.0) -> None:
        self.address, self.key, self.pid, self.timeout_s = address, key, pid, timeout_s
        self.local = threading.local()
        self.connect()  # fails here, not on the first call, when the host is gone

    def connect(self) -> Connection:
        conn = Client(self.address, authkey=self.key)
        self.local.conn = conn
        return conn

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        conn = getattr(self.local, "conn", None) or self.connect()
        try:
            conn.send((name, args, kwargs))
            # A dead host closes the socket (EOFError at once); a stopped or stuck one is given
            # timeout_s, then this connection is dropped (its late reply must not answer a later call).
            if not conn.poll(self.timeout_s):
                raise HostNotAnsweringError(self.pid, name, self.timeout_s)
            kind, value = conn.recv()
        except BaseException:
            self.local.conn = None
            with contextlib.suppress(OSError):
                conn.close()
            raise
        if kind == "error":
            raise value
        return value


class SharedEdgeIndex:
    """An ``Index`` over the embedded shard that works from any number of processes at once."""

    def __init__(
        self, root: Path, collection: str, tuning: CollectionSettings | None = None, call_timeout_s: float = 300.0
    ) -> None:
        self.root = root
        self.call_timeout_s = call_timeout_s
        self.collection = collection
        self.tuning = tuning or CollectionSettings()
        self.path = root / collection
        self.location = f"embedded:{self.path}"
        self.address_file = root / f"{collection}.host.json"
        self._lock = threading.RLock()
        self._local: EdgeIndex | None = None
        self._host: _Host | None = None
        self._guest: _Guest | None = None
        self._closed = False

    # -- which process does the work ---------------------------------------------------------
    @property
    def role(self) -> str:
        """ "host" (this process holds the shard), "guest" (another does) or "none" (not opened yet)."""
        return "host" if self._local is not None else "guest" if self._guest is not None else "none"

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + _CONNECT_WAIT_S
        while True:
            with self._lock:
                if self._closed:
                    raise SovraError("the index was closed")
                local, guest = self._local, self._guest
            if local is not None:  # outside the lock: the backend lets searches run beside writes
                return getattr(local, name)(*args, **kwargs)
            if guest is not None:
                try:
                    return guest.call(name, args, kwargs)
                except (OSError, EOFError) as exc:  # the host went: take over or find the next one
                    log.info("index host gone (%s); reconnecting", exc)
                    with self._lock:
                        self._guest = None
                    continue
            if self._become_host() or self._connect():
                continue
            if time.monotonic() > deadline:
                raise SovraError(
                    f"the embedded index at {self.path} is held by another process that does not answer",
                    hint="wait for it to finish, or stop it; a Qdrant server (SOVRA_QDRANT_URL) avoids this",
                )
            time.sleep(0.2)

    def _become_host(self) -> bool:
        """Take the shard's lock in this process if no other holds it, and serve the index to the
        others. The shard itself opens on the first call, as it does without sharing."""
        with self._lock:
            if self._local is not None or self._guest is not None:  # another thread got there first
                return True
            local = EdgeIndex(self.root, self.collection, self.tuning)
            try:
                local.lock()
            except IndexInUseError:
                return False
            self._local = local
            self._serve()
            return True

    def _serve(self) -> None:
        assert self._local is not None
        host = self._host = _Host(self._local)
        tmp = self.address_file.with_name(self.address_file.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            address = {"host": host.address[0], "port": host.address[1], "pid": os.getpid(), "key": host.key.hex()}
            json.dump(address, fh)
        tmp.replace(self.address_file)
        log.info("serving the embedded index %s to other processes on %s:%s", self.path, *host.address)

    def _connect(self) -> bool:
        try:
            raw = json.loads(self.address_file.read_text())
            pid = int(raw["pid"]) if raw.get("pid") else None
            guest = _Guest((raw["host"], int(raw["port"])), bytes.fromhex(raw["key"]), pid, self.call_timeout_s)
        except (OSError, EOFError, ValueError, KeyError, AuthenticationError):  # none yet, or a stale file
            return False
        with self._lock:
            self._guest = guest
        log.info("using the embedded index %s through the process %s", self.path, raw.get("pid"))
        return True

    # -- the Index protocol -----------------------------------------------------------------
    def ensure(self, info: Any) -> None:
        self._call("ensure", info)

    def check(self, info: Any) -> None:
        self._call("check", info)

    def upsert(self, points: Any) -> None:
        self._call("upsert", points)

    def replace(self, docs: Any) -> None:
        self._call("replace", docs)

    def stored_vectors(self, doc_ids: Any) -> Any:
        return self._call("stored_vectors", doc_ids)

    def delete_document(self, doc_id: str) -> None:
        self._call("delete_document", doc_id)

    def set_acl(self, doc_id: str, acl: Any) -> None:
        self._call("set_acl", doc_id, acl)

    def search(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("search", *args, **kwargs)

    def count(self, flt: Any = None) -> int:
        return int(self._call("count", flt))

    def chunks(self, flt: Any, fields: Any = None) -> Any:
        return self._call("chunks", flt, fields)

    def optimize(self) -> None:
        self._call("optimize")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._guest = None
            host, self._host = self._host, None
            local, self._local = self._local, None
        if host is not None:
            with contextlib.suppress(OSError, ValueError):
                if json.loads(self.address_file.read_text()).get("pid") == os.getpid():
                    self.address_file.unlink()
            host.stop()
        if local is not None:
            local.close()
