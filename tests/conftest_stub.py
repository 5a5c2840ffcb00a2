"""The ``stub_llm`` fixture: an OpenAI-compatible stub server for judge tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stub_llm import StubLLM


@pytest.fixture
def stub_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubLLM]:
    """A running stub on 127.0.0.1 (``stub_llm.url + "/v1"`` is the api_base), key sk-test."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    stub = StubLLM().start()
    yield stub
    stub.stop()
