"""litellm, imported once and configured for a server that must never phone home.

litellm reads its environment at import time, so importing :mod:`sovra.gateway` sets it first;
the import itself is deferred to the first call (it takes seconds).
"""

from __future__ import annotations

import logging
import os
import threading
from types import ModuleType

# litellm reads these at import time: without them ``import litellm`` fetches a model-cost map
# from the internet (and, lazily, tokenizers and other catalogs). A bank's server must never
# phone home, so we force them rather than defaulting them.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_OFFLINE_MODE"] = "true"
# litellm attaches its own stream handler at DEBUG unless told otherwise.
os.environ.setdefault("LITELLM_LOG", "WARNING")

_litellm: ModuleType | None = None
_litellm_lock = threading.Lock()


def _no_cost(**_kwargs: object) -> None:
    return None


def _get_litellm() -> ModuleType:
    """Import and configure litellm once, on first use (the import takes seconds)."""
    global _litellm
    with _litellm_lock:
        if _litellm is None:
            import litellm

            # Old litellm versions had an opt-out usage ping; in current ones ``litellm.telemetry``
            # is the proxy's (opt-in) subpackage, which we must not shadow.
            if isinstance(getattr(litellm, "telemetry", None), bool):
                litellm.telemetry = False
            litellm.callbacks = []
            litellm.success_callback = []
            litellm.failure_callback = []
            litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on errors
            # litellm prices every response against its public cost map; our self-hosted models and
            # adapters are not in it, and the failed lookups were ~6% of a call's CPU (profiled with
            # `sovra bench gateway`). Tokens, not dollars, are what Sovra records. This is litellm's
            # module-level hook, read on each call; the call path itself is unchanged.
            litellm.response_cost_calculator = _no_cost  # type: ignore[assignment]  # None: "not priced"
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
                lg = logging.getLogger(name)
                if lg.level == logging.NOTSET:  # per-call INFO lines would drown our own logs
                    lg.setLevel(logging.WARNING)
            _litellm = litellm
        return _litellm
