"""Conversations: runs grouped by thread, titles, search, delete; the owner only; the audit log is
appended to, never edited. On SQLite, and on PostgreSQL when SOVRA_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from sovra.audit import AuditLog
from sovra.config import Settings
from sovra.conversations import (
    DELETE,
    RENAME,
    ConversationNotFound,
    Conversations,
    ConversationStore,
)
from sovra.errors import InputError
from sovra.runs import RunRow, RunStore

PG_URL = os.environ.get("SOVRA_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgres"])
def convs(request, tmp_path) -> Iterator[Conversations]:
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("SOVRA_TEST_POSTGRES_URL is not set")
        settings = Settings(data_dir=tmp_path / "data", checkpoint_url=PG_URL)
    else:
        settings = Settings(data_dir=tmp_path / "data")
    runs = RunStore(settings)
    store = ConversationStore(settings)
    audit = AuditLog(tmp_path / "audit.sqlite")
    if request.param == "postgres":
        assert store.pg_url and not (tmp_path / "data" / "conversations.sqlite").exists()
    yield Conversations(runs, store, audit)
    store.close()
    runs.close()
    audit.close()


class Asker:
    """Runs as the runtime records them: a row in the run table and a run.start in the audit log."""

    def __init__(self, convs: Conversations) -> None:
        self.convs = convs
        self.suffix = uuid.uuid4().hex[:8]  # the PostgreSQL tables are shared between test runs
        self.clock = 1_700_000_000.0

    def user(self, name: str) -> str:
        return f"{name}-{self.suffix}"

    def ask(self, user: str, question: str, thread: str | None = None) -> str:
        run_id = f"run-{uuid.uuid4().hex[:12]}"
        thread = thread or run_id
        self.convs.runs.create(RunRow(run_id, thread, "assistant", user, "streamlit", question, "answered"))
        self.convs.audit.append("run.start", {"question": question}, run_id=run_id, user_id=user)
        self.clock += 60  # one question a minute: the order is by creation time
        self.convs.runs.update(run_id, created=self.clock)
        return thread


def test_grouped_by_conversation_titled_by_first_question_newest_first(convs):
    a = Asker(convs)
    alice = a.user("alice")
    t1 = a.ask(alice, "What is the hotel limit in London?")
    a.ask(alice, "And in Paris?", t1)
    t2 = a.ask(alice, "May I accept a gift of EUR 120?")
    a.ask(alice, "And from a customer?", t1)  # t1 is now the most recent
    found = convs.list(alice)
    assert [c.thread_id for c in found] == [t1, t2]
    assert found[0].title == "What is the hotel limit in London?"
    assert found[0].questions == ("What is the hotel limit in London?", "And in Paris?", "And from a customer?")
    assert len(found[0].run_ids) == 3 and found[0].run_ids[0] == t1


def test_search_titles_and_questions(convs):
    a = Asker(convs)
    alice = a.user("alice")
    t1 = a.ask(alice, "What is the hotel limit in London?")
    a.ask(alice, "And in Paris?", t1)
    t2 = a.ask(alice, "May I accept a gift?")
    assert [c.thread_id for c in convs.list(alice, "paris")] == [t1]  # a later question matches
    assert [c.thread_id for c in convs.list(alice, "GIFT accept")] == [t2]  # every word, any case
    assert convs.list(alice, "gift paris") == []
    convs.rename(alice, t2, "Supplier presents")
    assert [c.thread_id for c in convs.list(alice, "presents")] == [t2]  # the new title too


def test_rename_and_delete_are_appended_to_the_audit_log(convs):
    a = Asker(convs)
    alice = a.user("alice")
    t1 = a.ask(alice, "What is the hotel limit in London?")
    head = convs.audit.head()
    renamed = convs.rename(alice, t1, "  Hotels   abroad ")
    assert renamed.title == "Hotels abroad" and renamed.renamed
    convs.delete(alice, t1)
    assert convs.list(alice) == []
    with pytest.raises(ConversationNotFound):
        convs.get(alice, t1)
    records = convs.audit.records(t1)
    assert [r.kind for r in records][-2:] == [RENAME, DELETE]
    assert records[-2].data["text"] == "Hotels abroad" and records[-2].user_id == alice
    assert convs.audit.head().count == head.count + 2
    assert convs.audit.verify().ok  # appended, nothing edited
    assert records[0].kind == "run.start"  # the run itself is still there


def test_another_user_cannot_open_rename_or_delete_by_id(convs):
    a = Asker(convs)
    alice, bob = a.user("alice"), a.user("bob")
    t1 = a.ask(alice, "What is the hotel limit in London?")
    a.ask(bob, "What was paid to Acme?")
    assert [c.title for c in convs.list(bob)] == ["What was paid to Acme?"]
    errors = []
    for attempt in (
        lambda: convs.get(bob, t1),
        lambda: convs.rename(bob, t1, "mine now"),
        lambda: convs.delete(bob, t1),
        lambda: convs.get(bob, "no-such-thread"),
    ):
        with pytest.raises(ConversationNotFound) as exc:
            attempt()
        errors.append(exc.value.message)
    assert len(set(errors)) == 1  # someone else's and a missing one read the same
    assert convs.get(alice, t1).title == "What is the hotel limit in London?"  # untouched
    assert [r.kind for r in convs.audit.records(t1)] == ["run.start"]  # nothing recorded for bob's tries


def test_a_thread_with_another_users_run_is_nobodys(convs):
    """The runtime refuses a thread of another user; should a row say otherwise, neither may open it."""
    a = Asker(convs)
    alice, bob = a.user("alice"), a.user("bob")
    t1 = a.ask(alice, "first")
    a.ask(bob, "second", t1)
    for who in (alice, bob):
        with pytest.raises(ConversationNotFound):
            convs.get(who, t1)


def test_titles_are_checked(convs):
    a = Asker(convs)
    alice = a.user("alice")
    t1 = a.ask(alice, "What is the hotel limit in London?")
    with pytest.raises(InputError, match="empty"):
        convs.rename(alice, t1, "   ")
    with pytest.raises(InputError, match="limit is 120"):
        convs.rename(alice, t1, "x" * 121)


def test_erasure_drops_titles(convs):
    a = Asker(convs)
    alice = a.user("alice")
    t1 = a.ask(alice, "What is the hotel limit in London?")
    convs.rename(alice, t1, "Alice's trip to London")
    assert convs.store.erase_subject(alice) == 1
    assert convs.get(alice, t1).title == "What is the hotel limit in London?"
