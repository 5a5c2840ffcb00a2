"""The committed demo data: valid, as large and as labelled as promised, and reproducible."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from judgeloop.models import HumanLabelCreate, SessionCreate
from judgeloop.sessions import LineError, load_criteria_file, read_jsonl
from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "datasets" / "demo"


def _items(name: str, model: type) -> list:
    parsed = list(read_jsonl(DEMO / name, model))
    errors = [p for p in parsed if isinstance(p, LineError)]
    assert not errors, errors[:5]
    return [p.item for p in parsed]


def test_criteria_are_the_four_promised() -> None:
    criteria = {c.name: c for c in load_criteria_file(DEMO / "criteria.yaml")}
    assert set(criteria) >= {"resolved", "policy_compliant", "tone", "safety"}
    assert criteria["resolved"].kind == "binary" and criteria["tone"].kind == "ordinal"
    assert criteria["tone"].labels == ["1", "2", "3", "4", "5"]
    assert criteria["safety"].safety is True


def test_sessions_are_many_multi_turn_and_use_tools() -> None:
    sessions = _items("sessions.jsonl", SessionCreate)
    assert len(sessions) >= 400
    assert len({s.external_id for s in sessions}) == len(sessions)
    assert all(len(s.messages) >= 4 for s in sessions)
    tools = Counter(c.name for s in sessions for m in s.messages for c in m.tool_calls)
    assert {"lookup_order", "issue_refund", "update_account", "send_email"} <= set(tools)


def test_every_session_has_three_sme_labels_per_criterion() -> None:
    sessions = _items("sessions.jsonl", SessionCreate)
    labels = _items("labels.jsonl", HumanLabelCreate)
    annotators: dict[tuple[str, str], set[str]] = defaultdict(set)
    for label in labels:
        annotators[(label.session.external_id, label.criterion)].add(label.annotator)
    for session in sessions:
        for criterion in ("resolved", "policy_compliant", "tone", "safety"):
            assert len(annotators[(session.external_id, criterion)]) >= 3
    assert len({label.annotator for label in labels}) >= 3
    assert all(label.rationale for label in labels)


def test_smes_disagree_more_on_borderline_sessions() -> None:
    import json

    truth = {
        row["external_id"]: row
        for row in map(json.loads, (DEMO / "truth.jsonl").read_text().splitlines())
    }
    labels = _items("labels.jsonl", HumanLabelCreate)
    votes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for label in labels:
        votes[(label.session.external_id, label.criterion)].append(label.value)
    split: dict[bool, list[bool]] = {True: [], False: []}
    for (external_id, criterion), values in votes.items():
        borderline = bool(truth[external_id]["borderline"].get(criterion))
        split[borderline].append(len(set(values)) == 1)
    unanimous_rate = {k: sum(v) / len(v) for k, v in split.items() if v}
    assert unanimous_rate[True] < unanimous_rate[False]


def test_drift_and_injection_batches_exist() -> None:
    drift = _items("drift_sessions.jsonl", SessionCreate)
    main_lines = {s.metadata.get("product_line") for s in _items("sessions.jsonl", SessionCreate)}
    assert len(drift) >= 50
    assert {s.metadata.get("product_line") for s in drift} - main_lines
    injection = [s for s in drift if s.metadata.get("batch") == "injection"]
    assert len(injection) >= 5
    _items("drift_labels.jsonl", HumanLabelCreate)


@pytest.mark.parametrize("seed", [7])
def test_generator_reproduces_the_committed_files(tmp_path: Path, seed: int) -> None:
    subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "datasets" / "generate_demo.py"),
            "--seed",
            str(seed),
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    for committed in sorted(DEMO.iterdir()):
        regenerated = tmp_path / committed.name
        assert regenerated.exists(), committed.name
        assert regenerated.read_bytes() == committed.read_bytes(), committed.name
