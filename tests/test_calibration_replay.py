"""The replay benchmark: reading replay files, running methods over splits, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from judgeloop.calibration.replay import ReplayError, load_replay, run_guarantee_benchmark


def write_replay(path: Path, n_items: int = 300, seed: int = 0) -> Path:
    """Three judges of a yes/no criterion: two give probabilities, one a label and confidence."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n_items):
        truth = "yes" if rng.random() < 0.5 else "no"
        other = "no" if truth == "yes" else "yes"
        human = [truth if rng.random() < 0.9 else other for _ in range(3)]
        judges: dict[str, object] = {}
        for name, skill in (("strong", 2.5), ("weak", 1.2)):
            p_truth = float(1 / (1 + np.exp(-(skill + rng.normal(0, 1.5)))))
            judges[name] = {"probs": {truth: p_truth, other: 1 - p_truth}}
        confidence = float(rng.uniform(0.5, 1.0))
        label = truth if rng.random() < confidence else other
        if i % 50 != 7:  # the rule judge sometimes gives no verdict
            judges["rules"] = {"label": label, "confidence": round(confidence, 2)}
        lines.append(json.dumps({"id": f"item-{i}", "human": human, "judges": judges}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_load_replay_takes_the_majority_and_normalises(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(
        json.dumps(
            {"id": "a", "human": ["B", "A", "B"], "judges": {"j": {"probs": {"A": 2, "B": 6}}}}
        )
        + "\n\n"
        + json.dumps(
            {"id": "b", "human": ["A", "B"], "judges": {"k": {"label": "C", "confidence": 0.7}}}
        )
        + "\n"
    )
    replay = load_replay(path)
    assert replay.labels == ["A", "B", "C"] and replay.judges == ["j", "k"]
    assert replay.human.tolist() == [1, 0]  # a 1-1 tie goes to the label sorting first
    assert replay.confidence[0, 0] == pytest.approx(0.75) and replay.predicted[0, 0] == 1
    assert np.isnan(replay.confidence[1, 0]) and replay.predicted[1, 0] == -1
    assert replay.distributions[1, 1].tolist() == pytest.approx([0.15, 0.15, 0.7])
    assert replay.agrees().tolist() == [[True, False], [False, False]]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"id": "x", "human": [], "judges": {}}', "human"),
        (
            '{"id": "x", "human": ["a"], "judges": {"j": {"label": "a", "confidence": 2}}}',
            "judges.j",
        ),
        (
            '{"id": "x", "human": ["a"], "judges": {"j": {"probs": {"a": -1, "b": 2}}}}',
            "judges.j.probs",
        ),
        ('{"id": "item-0", "human": ["a"], "judges": {}}', "duplicate id"),
    ],
)
def test_bad_lines_are_named_by_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "item-0", "human": ["a"], "judges": {}}) + "\n" + line + "\n")
    with pytest.raises(ReplayError, match=rf"{path}:2: .*{message}"):
        load_replay(path)


def test_benchmark_methods_and_baselines(tmp_path: Path) -> None:
    replay = load_replay(write_replay(tmp_path / "r.jsonl"))
    result = run_guarantee_benchmark(
        replay,
        alpha=0.2,
        delta=0.1,
        cal_size=150,
        splits=40,
        cascades=[["rules", "strong"]],
        seed=1,
    )
    by_method = {row.method: row for row in result.results}
    assert set(by_method) == {
        "strong",
        "weak",
        "rules",
        "cascade: rules > strong",
        "learned: stacked 3 judges",
        *(
            f"{kind}: {name}"
            for kind in ("no abstention", "fixed 0.5 threshold")
            for name in ("strong", "weak", "rules")
        ),
    }
    assert by_method["no abstention: strong"].coverage == 1.0
    assert by_method["no abstention: rules"].coverage == pytest.approx(0.98, abs=0.02)
    for row in result.results:
        assert 0.0 <= row.success_rate <= 1.0 and 0.0 <= row.coverage <= 1.0
    again = run_guarantee_benchmark(
        replay,
        alpha=0.2,
        delta=0.1,
        cal_size=150,
        splits=40,
        cascades=[["rules", "strong"]],
        seed=1,
    )
    assert again == result
    only = run_guarantee_benchmark(
        replay, alpha=0.2, delta=0.1, cal_size=150, splits=3, judges=["weak"]
    )
    assert [row.method for row in only.results] == [
        "weak",
        "no abstention: weak",
        "fixed 0.5 threshold: weak",
    ]
    with pytest.raises(ReplayError, match="unknown judge"):
        run_guarantee_benchmark(
            replay, alpha=0.2, delta=0.1, cal_size=150, splits=1, cascades=[["x", "y"]]
        )
    with pytest.raises(ReplayError, match="cal_size"):
        run_guarantee_benchmark(replay, alpha=0.2, delta=0.1, cal_size=300, splits=1)


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "judgeloop", "bench", "guarantee", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_bench_cli_prints_the_json_summary(tmp_path: Path) -> None:
    path = write_replay(tmp_path / "replay.jsonl")
    common = ["--replay", str(path), "--alpha", "0.2", "--delta", "0.1", "--cal-size", "150"]
    result = run_bench(
        *common, "--splits", "20", "--cascade", "rules,strong", "--seed", "3", "--json"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == {"alpha", "delta", "splits", "results"}
    assert (summary["alpha"], summary["delta"], summary["splits"]) == (0.2, 0.1, 20)
    for row in summary["results"]:
        assert set(row) == {"method", "success_rate", "coverage", "agreement"}
    by_method = {row["method"]: row for row in summary["results"]}
    assert by_method["no abstention: strong"]["coverage"] == 1.0
    assert "cascade: rules > strong" in by_method and "learned: stacked 3 judges" in by_method

    table = run_bench(*common, "--splits", "5", "--judge", "strong", "--judge", "weak")
    assert table.returncode == 0, table.stderr
    assert "success rate" in table.stdout and "learned: stacked 2 judges" in table.stdout
    assert "rules" not in table.stdout


def test_bench_cli_reports_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "human": ["x"], "judges": {}}\n{oops\n')
    result = run_bench("--replay", str(path), "--cal-size", "1", "--json")
    assert result.returncode == 1
    assert f"{path}:2: invalid JSON" in result.stderr
    good = write_replay(tmp_path / "good.jsonl", n_items=60)
    result = run_bench("--replay", str(good), "--cal-size", "30", "--cascade", "strong")
    assert result.returncode == 1 and "at least two judges" in result.stderr
