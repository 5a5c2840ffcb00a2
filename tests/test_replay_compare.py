"""`judgeloop compare --replay`: two recorded judges on the items both judged, and its CI gates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from judgeloop.calibration.replay import ReplayError, load_replay
from judgeloop.calibration.replay_compare import (
    compare_replay,
    compare_replay_file,
    gate_reasons,
    majority_is_tied,
)


def write_replay(path: Path, n_items: int = 400, seed: int = 0) -> Path:
    """Yes/no items, three annotators; judges of known accuracy against the majority.

    ``good`` and ``twin`` give the same verdicts (accuracy 0.9), ``bad`` is right 60% of the
    time, ``sparse`` skips every tenth item. Every 25th item has a 1-1 human tie.
    """
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n_items):
        truth = "yes" if rng.random() < 0.5 else "no"
        other = "no" if truth == "yes" else "yes"
        human = [truth, truth, other] if i % 3 else [truth] * 3
        if i % 25 == 0:
            human = [truth, other]
        good = truth if rng.random() < 0.9 else other
        bad = truth if rng.random() < 0.6 else other
        confidence = round(float(rng.uniform(0.5, 1.0)), 3)
        judges: dict[str, object] = {
            "good": {"label": good, "confidence": confidence},
            "twin": {"label": good, "confidence": confidence},
            "bad": {"probs": {bad: 0.7, ("no" if bad == "yes" else "yes"): 0.3}},
        }
        if i % 10:
            judges["sparse"] = {"label": good, "confidence": confidence}
        lines.append(json.dumps({"id": f"item-{i}", "human": human, "judges": judges}))
    path.write_text("\n".join(lines) + "\n")
    return path


def run_compare(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "judgeloop", "compare", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_majority_ties() -> None:
    assert majority_is_tied(["a", "b"]) and majority_is_tied(["1", "2", "tie"])
    assert not majority_is_tied(["a"]) and not majority_is_tied(["a", "a", "b"])
    assert majority_is_tied(["a", "a", "b", "b", "c"])


def test_identical_judges_differ_by_nothing(tmp_path: Path) -> None:
    path = write_replay(tmp_path / "r.jsonl")
    result = compare_replay_file(path, "good", "twin", n_resamples=300)
    assert result.n_items == 400 and result.n_tied == 16 and result.n_missing == 0
    assert result.n == 384
    assert result.agreement_difference.estimate == 0.0
    assert result.agreement_difference.low == 0.0 and result.agreement_difference.high == 0.0
    assert result.kappa_difference.estimate == 0.0
    assert result.mcnemar.p_value == 1.0
    assert result.mcnemar.only_first_correct == result.mcnemar.only_second_correct == 0
    assert result.first.agreement == result.second.agreement
    assert gate_reasons(result, {}, fail_if_worse=True) == []
    assert result.verdict.startswith("verdict: no clear difference between good and twin")


def test_a_worse_judge_is_seen(tmp_path: Path) -> None:
    path = write_replay(tmp_path / "r.jsonl")
    result = compare_replay_file(path, "good", "bad", n_resamples=500)
    good, bad = result.first.agreement, result.second.agreement
    assert good.estimate == pytest.approx(0.9, abs=0.04)
    assert bad.estimate == pytest.approx(0.6, abs=0.06)
    # second minus first, with a paired interval well below zero
    difference = result.agreement_difference
    assert difference.estimate == pytest.approx(bad.estimate - good.estimate)
    assert difference.high is not None and difference.high < 0
    assert result.kappa_difference.high is not None and result.kappa_difference.high < 0
    assert result.mcnemar.only_first_correct > result.mcnemar.only_second_correct
    assert result.mcnemar.p_value < 1e-6
    reasons = gate_reasons(result, {"agreement": 0.8}, fail_if_worse=True)
    assert len(reasons) == 2 and all(reason.startswith("bad ") for reason in reasons)
    assert "less than good" in reasons[1]
    assert result.verdict.startswith("verdict: they differ; good agrees with the humans more")
    # the other way round the candidate is better: no reason to fail
    reverse = compare_replay_file(path, "bad", "good", n_resamples=500)
    assert reverse.agreement_difference.estimate == pytest.approx(-difference.estimate)
    assert gate_reasons(reverse, {"agreement": 0.8}, fail_if_worse=True) == []


def test_only_items_both_judged_count(tmp_path: Path) -> None:
    path = write_replay(tmp_path / "r.jsonl")
    result = compare_replay_file(path, "good", "sparse", n_resamples=200)
    # every tenth item lacks "sparse"; items 0, 50, ... are also ties (counted as ties only)
    assert result.n_missing == 40 - 8
    assert result.n == 400 - result.n_tied - result.n_missing
    assert result.first.n_judged == 400 and result.second.n_judged == 360
    assert result.agreement_difference.estimate == 0.0


def test_coverage_at_the_target(tmp_path: Path) -> None:
    path = write_replay(tmp_path / "r.jsonl")
    result = compare_replay_file(path, "good", "bad", alpha=0.2, delta=0.1, n_resamples=200)
    assert (result.alpha, result.delta) == (0.2, 0.1)
    good, bad = result.first.coverage, result.second.coverage
    assert good is not None and bad is not None
    assert good.n_cal + good.n_test == result.n and good.n_cal == result.n // 2
    # the 0.9-accurate judge clears 0.8 with everything; the 0.6 one cannot
    assert good.lambda_ is not None and good.coverage > 0.9
    assert good.agreement is not None and good.agreement >= 0.8
    assert bad.lambda_ is None and bad.coverage == 0.0 and bad.agreement is None
    plain = compare_replay_file(path, "good", "bad", n_resamples=200)
    assert plain.first.coverage is None and plain.alpha is None


def test_the_pure_function_on_a_loaded_replay(tmp_path: Path) -> None:
    replay = load_replay(write_replay(tmp_path / "r.jsonl", n_items=100))
    result = compare_replay(replay, "good", "bad", n_resamples=200)
    assert result.n_tied == 0 and result.n == 100  # without ``tied`` nothing is dropped
    with pytest.raises(ReplayError, match="unknown judge"):
        compare_replay(replay, "good", "nobody")
    with pytest.raises(ValueError, match="tied"):
        compare_replay(replay, "good", "bad", tied=np.zeros(3, dtype=bool))


def test_no_common_item_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    rows = [
        {"id": "a", "human": ["x"], "judges": {"p": {"label": "x", "confidence": 1}}},
        {"id": "b", "human": ["y"], "judges": {"q": {"label": "y", "confidence": 1}}},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(ReplayError, match="no item was judged by both"):
        compare_replay_file(path, "p", "q")


def test_cli_identical_judges(tmp_path: Path) -> None:
    path = write_replay(tmp_path / "r.jsonl")
    result = run_compare("--replay", str(path), "good", "twin", "--fail-if-worse", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["n"] == 384 and summary["n_tied"] == 16
    assert summary["agreement_difference"]["estimate"] == 0.0
    assert summary["kappa_difference"]["estimate"] == 0.0
    assert summary["mcnemar"]["p_value"] == 1.0
    assert summary["first"]["judge"] == "good" and summary["second"]["judge"] == "twin"
    assert summary["verdict"].startswith("verdict: no clear difference")


def test_cli_fail_if_worse_names_the_worse_judge(tmp_path: Path) -> None:
    path = write_replay(tmp_path / "r.jsonl")
    worse = run_compare("--replay", str(path), "good", "bad", "--fail-if-worse")
    assert worse.returncode == 1
    assert "agreement" in worse.stdout and "McNemar" in worse.stdout  # the table still prints
    error_lines = [line for line in worse.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1, worse.stderr
    assert error_lines[0].startswith("error: bad agrees with the human majority less than good")
    better = run_compare("--replay", str(path), "bad", "good", "--fail-if-worse")
    assert better.returncode == 0, better.stderr
    assert "difference (2nd - 1st)" in better.stdout
    assert "verdict: they differ; good agrees with the humans more often than bad" in " ".join(
        better.stdout.split()
    )


def test_cli_fail_below(tmp_path: Path) -> None:
    path = write_replay(tmp_path / "r.jsonl")
    common = ["--replay", str(path), "bad", "good", "--json"]
    passing = run_compare(*common, "--fail-below", "agreement=0.8,kappa=0.6")
    assert passing.returncode == 0, passing.stderr
    failing = run_compare(*common, "--fail-below", "agreement=0.95")
    assert failing.returncode == 1
    assert "error: good agreement 0.8" in failing.stderr and "is below 0.95" in failing.stderr
    kappa = run_compare(*common, "--fail-below", "kappa=0.99")
    assert kappa.returncode == 1 and "good kappa" in kappa.stderr
    malformed = run_compare(*common, "--fail-below", "precision=0.5")
    assert malformed.returncode == 1 and "agreement=X,kappa=Y" in malformed.stderr


def test_cli_coverage_table(tmp_path: Path) -> None:
    path = write_replay(tmp_path / "r.jsonl")
    result = run_compare("--replay", str(path), "good", "bad", "--alpha", "0.2")
    assert result.returncode == 0, result.stderr
    assert "coverage at target" in result.stdout and "none: escalate all" in result.stdout
    assert "16 with a tied human majority" in result.stdout
    bad_delta = run_compare("--replay", str(path), "good", "bad", "--delta", "0.7")
    assert bad_delta.returncode == 1 and "delta" in bad_delta.stderr


def test_cli_bad_lines_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good_line = json.dumps({"id": "a", "human": ["x"], "judges": {}})
    path.write_text(good_line + "\n\n" + '{"id": "b", "human": "x"\n')
    result = run_compare("--replay", str(path), "p", "q")
    assert result.returncode == 1
    assert f"{path}:3: invalid JSON" in result.stderr
    path.write_text(good_line + "\n" + json.dumps({"id": "b", "human": [], "judges": {}}) + "\n")
    result = run_compare("--replay", str(path), "p", "q")
    assert result.returncode == 1 and f"{path}:2: human" in result.stderr
    unknown = run_compare("--replay", str(write_replay(tmp_path / "r.jsonl")), "good", "nobody")
    assert unknown.returncode == 1 and "unknown judge" in unknown.stderr
    missing = run_compare("--replay", str(tmp_path / "absent.jsonl"), "good", "bad")
    assert missing.returncode == 1 and "absent.jsonl" in missing.stderr


def test_alpha_without_replay_is_refused() -> None:
    result = run_compare("a", "b", "--alpha", "0.1")
    assert result.returncode == 1 and "--replay" in result.stderr
