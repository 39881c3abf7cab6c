"""The chat's search filters (issue 24), driven by streamlit.testing.v1.AppTest over the demo bank:
the sidebar offers the sources and types of documents the user may read, a chosen source limits
what the next question retrieves, and the run's audit records the filters."""

from __future__ import annotations

import pytest
from conftest import copy_demo_data
from streamlit.testing.v1 import AppTest

from sovra.audit import AuditLog
from sovra.ui.chat.launch import APP

QUESTION = "What is the hotel limit per night in London?"

pytestmark = pytest.mark.slow  # two questions answered over the demo bank


@pytest.fixture
def chat(demo_settings, tmp_path, monkeypatch):
    data = copy_demo_data(demo_settings, tmp_path / "data")
    monkeypatch.setenv("SOVRA_DATA_DIR", str(data))
    monkeypatch.setenv("SOVRA_AS_OF", str(demo_settings.as_of))
    monkeypatch.setenv("SOVRA_UI_DEV_LOGIN", "true")
    monkeypatch.setenv("STREAMLIT_SERVER_ADDRESS", "127.0.0.1")
    monkeypatch.delenv("SOVRA_LLM_BASE_URL", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.session_state["dev_user"] = "alice"
    at.run()
    at.selectbox(key="agent").select("assistant").run()
    assert not at.exception, [e.value for e in at.exception]
    return at, data


def test_a_chosen_source_limits_what_the_next_question_retrieves(chat):
    at, data = chat
    sources = at.multiselect(key="filter_sources")
    assert set(sources.options) >= {"contracts", "sharepoint"}, sources.options
    assert "ledger" not in sources.options  # alice may read no ledger row: its name is not offered

    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception, [e.value for e in at.exception]
    free = at.session_state["messages"][-1]
    assert "250" in free.text, free.text  # the travel policy, from the SharePoint export

    at.multiselect(key="filter_sources").select("contracts").run()
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception, [e.value for e in at.exception]
    scoped = at.session_state["messages"][-1]
    assert "250" not in scoped.text, scoped.text
    urls = [c.url for c in [*scoped.citations, *scoped.evidence] if c.kind == "document"]
    assert all("/contracts/" in u for u in urls), urls
    with AuditLog(data / "audit.sqlite") as log:
        kinds = {r.kind: r.data for r in log.records(scoped.run_id)}
        unscoped = {r.kind for r in log.records(free.run_id)}
    assert kinds["run.scope"]["sources"] == ["contracts"] and "run.scope" not in unscoped
