"""Nothing heavy happens at import time: no engine, no settings, no LLM libraries."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_package_loads_no_llm_libraries_and_reads_no_settings() -> None:
    code = (
        "import sys, judgeloop, judgeloop.api, judgeloop.cli, judgeloop.store, judgeloop.models\n"
        "from judgeloop.config import get_settings\n"
        "heavy = [m for m in ('litellm', 'instructor', 'sklearn', 'uvicorn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert get_settings.cache_info().currsize == 0, 'settings were built at import'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_settings_come_from_the_environment(monkeypatch: object) -> None:
    import os

    from judgeloop.config import Settings

    os.environ["JUDGELOOP_MAX_BATCH_SIZE"] = "7"
    try:
        assert Settings().max_batch_size == 7
    finally:
        del os.environ["JUDGELOOP_MAX_BATCH_SIZE"]
    assert Settings().database_url.startswith("sqlite:///")
