"""The benchmark scripts run end to end on the public data (skipped when it is absent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO_ROOT / "benchmarks"


def public_data_dir() -> Path:
    configured = os.environ.get("JUDGELOOP_PUBLIC_DATA_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "datasets"


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )


def last_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def is_interval(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"estimate", "low", "high"}
        and value["low"] <= value["estimate"] <= value["high"]
    )


@pytest.mark.parametrize("script", ["public_agreement.py", "guarantee_llmbar.py"])
def test_scripts_skip_without_data(tmp_path: Path, script: str) -> None:
    result = run_script(script, "--data-dir", str(tmp_path / "nowhere"), "--quick", "--json")
    summary = last_json(result)
    assert "skipped" in summary and "nowhere" in summary["skipped"]
    assert result.stdout.startswith("skipped: ")


def test_public_agreement_quick() -> None:
    data = public_data_dir()
    for folder in ("pandalm_testset", "xstest", "qags_mturk"):
        if not (data / folder).is_dir():
            pytest.skip(f"public dataset {folder} not found under {data}")
    result = run_script("public_agreement.py", "--data-dir", str(data), "--quick", "--json")
    summary = last_json(result)
    assert summary["benchmark"] == "public_agreement" and summary["skipped"] == {}
    assert "| gpt-3.5-turbo" in result.stdout and "Human ceiling" in result.stdout

    pandalm = summary["pandalm"]
    assert pandalm["n_items"] == 999
    assert set(pandalm["judges"]) == {"gpt-3.5-turbo", "pandalm-7b"}
    for judge in pandalm["judges"].values():
        for key in ("agreement", "cohen_kappa", "leave_one_out_judge", "leave_one_out_sme"):
            assert is_interval(judge[key]), key
        # neither judge reaches the annotators' own leave-one-out agreement
        assert judge["judge_minus_sme"]["high"] < 0
    ceiling = pandalm["ceiling"]
    assert is_interval(ceiling["krippendorff_alpha"])
    assert is_interval(ceiling["mean_pairwise_kappa"])
    comparison = pandalm["comparison"]
    assert (comparison["first"], comparison["second"]) == ("gpt-3.5-turbo", "pandalm-7b")
    assert 0.0 <= comparison["mcnemar"]["p_value"] <= 1.0
    assert is_interval(comparison["agreement_difference"])
    assert isinstance(comparison["differ"], bool)

    xstest = summary["xstest"]
    assert set(xstest["judges"]) == {"gpt4", "strmatch"}
    assert is_interval(xstest["annotators"]["cohen_kappa"])
    for judge in xstest["judges"].values():
        assert is_interval(judge["agreement"]) and is_interval(judge["cohen_kappa"])

    qags = summary["qags"]
    assert {"all", "cnndm", "xsum"} <= set(qags)
    assert qags["all"]["n_items"] == 953 and is_interval(qags["all"]["krippendorff_alpha"])


def test_guarantee_llmbar_quick() -> None:
    data = public_data_dir()
    if not (data / "llmbar").is_dir():
        pytest.skip(f"LLMBar not found under {data}")
    result = run_script("guarantee_llmbar.py", "--data-dir", str(data), "--quick", "--json")
    summary = last_json(result)
    assert summary["benchmark"] == "guarantee_llmbar" and summary["splits"] == 50
    assert summary["delta"] == 0.1 and 0.1 in summary["alphas"]
    assert "success rate" in result.stdout
    floor = 1 - summary["delta"] - 0.1
    configs = {run["config"] for run in summary["runs"]}
    assert configs == {"llmbar", "llmbar+processed"}
    for run in summary["runs"]:
        methods = {row["method"]: row for row in run["results"]}
        assert any(m.startswith("cascade: ") for m in methods)
        assert any(m.startswith("learned: ") for m in methods)
        assert any(m.startswith("no abstention: ") for m in methods)
        assert any(m.startswith("fixed 0.5 threshold: ") for m in methods)
        for method, row in methods.items():
            assert set(row) >= {"method", "success_rate", "coverage", "agreement", "guarantee"}
            assert 0.0 <= row["coverage"] <= 1.0
            if row["guarantee"]:
                assert row["success_rate"] >= floor, (run["config"], run["alpha"], method)


# --------------------------------------------------------------------------- performance
# Tiny sizes: these check that the scripts run end to end and report sane figures, not speed.


def test_bench_service_tiny() -> None:
    result = run_script(
        "bench_service.py", "--sessions", "24", "--concurrency", "4", "--latency-ms", "20", "--json"
    )
    summary = last_json(result)
    assert summary["benchmark"] == "bench_service" and summary["mode"] == "wait"
    assert summary["judged"] == 24 and summary["failed"] == 0
    assert summary["ideal_per_s"] == pytest.approx(4 / 0.020)
    for key in ("throughput_ratio", "direct_throughput_ratio", "service_vs_direct"):
        assert 0 < summary[key] < 10, key
    assert summary["added_latency_p99_ms"] >= summary["added_latency_p50_ms"]
    assert summary["peak_rss_mb"] > 10
    assert summary["machine"]["cpu_count"] >= 1 and len(summary["machine"]["loadavg"]) == 3
    assert "throughput" in result.stdout and "C/L" in result.stdout


def test_bench_ingest_tiny() -> None:
    result = run_script(
        "bench_ingest.py",
        "--sessions",
        "60",
        "--batch",
        "20",
        "--singles",
        "8",
        "--no-postgres",
        "--concurrency",
        "2",
        "--json",
    )
    summary = last_json(result)
    assert summary["benchmark"] == "bench_ingest" and summary["postgresql"] is None
    sqlite = summary["sqlite"]
    assert sqlite["batched_per_s"] > 0 and sqlite["single_per_s"] > 0
    assert sqlite["batch_request_p99_ms"] >= sqlite["batch_request_p50_ms"] > 0
    assert 0 < sqlite["single_vs_http"] < 10
    assert "machine" in summary and "loadavg_after" in summary


def test_bench_store_tiny() -> None:
    result = run_script(
        "bench_store.py",
        "--items",
        "300",
        "--labels",
        "400",
        "--claims",
        "5",
        "--resamples",
        "20",
        "--json",
    )
    summary = last_json(result)
    assert summary["benchmark"] == "bench_store" and summary["items"] == 300
    assert summary["claims"] == 5 and summary["claim_p99_ms"] >= summary["claim_p50_ms"] > 0
    assert summary["agreement_audited"] == 3  # 1% of the decisions carry an audit label
    assert summary["agreement_seconds"] > 0 and summary["calibration_seconds"] > 0
    ratio = summary["calibration_seconds"] / 3
    assert summary["calibration_ratio_to_target"] == pytest.approx(ratio, abs=0.001)
