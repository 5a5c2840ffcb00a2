"""`judgeloop recalibrate` and `judgeloop export` on the demo data, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from judgeloop.calibration.calibrate import calibrate_judge, partition_ids
from judgeloop.calibration.recalibrate import assign_new_sessions, feedback_partition
from judgeloop.judges.derive import DeriveOptions, derive_spec
from judgeloop.judges.spec import FewShotExample, JudgeSpec, dump_spec
from judgeloop.models import Calibration, HumanLabel, HumanLabelCreate, SessionRef, SplitAssignment
from judgeloop.models import Session as SessionRow
from judgeloop.sessions import import_sessions
from judgeloop.store import add_labels, db_session, find_sessions, get_criterion, get_splits
from tests.conftest import REPO_ROOT
from tests.test_cli import run_cli

DEMO = REPO_ROOT / "datasets" / "demo"
REVIEWED = 40


def _drift_labels(criterion: str) -> dict[str, str]:
    """The first SME's label of each drifted session on ``criterion``, by external id."""
    first: dict[str, str] = {}
    for line in (DEMO / "drift_labels.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["criterion"] == criterion:
            first.setdefault(row["session"]["external_id"], row["value"])
    return first


def _review(external_id: str, value: str, **extra: object) -> HumanLabelCreate:
    return HumanLabelCreate(
        session=SessionRef(source="demo-support", external_id=external_id),
        criterion="resolved",
        value=value,
        annotator=str(extra.pop("annotator", "reviewer-1")),
        rationale="Checked the whole conversation.",
        source=extra.pop("source", "review"),  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def reviewed(demo_engine: Engine, tmp_path: Path) -> tuple[Engine, JudgeSpec, Path]:
    """A derived and calibrated resolved judge; drifted sessions reviewed since."""
    spec = derive_spec(
        demo_engine, DeriveOptions(criterion="resolved", name="resolved-v1"), actor="test"
    ).spec
    path = tmp_path / "judges" / "resolved" / "v1.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(dump_spec(spec))
    calibrate_judge(demo_engine, spec, alpha=0.1, delta=0.1, actor="test", n_resamples=200)
    import_sessions(demo_engine, DEMO / "drift_sessions.jsonl", actor="test")
    drift = sorted(_drift_labels("resolved").items())[:REVIEWED]
    labels = [
        _review(
            external_id,
            value,
            source="audit" if index % 4 == 0 else "review",
            correction="Offer the replacement and confirm it." if index % 5 == 0 else None,
        )
        for index, (external_id, value) in enumerate(drift)
    ]
    with db_session(demo_engine) as db:
        add_labels(db, labels, actor="test")
    return demo_engine, spec, path


def _derive_session(engine: Engine, spec: JudgeSpec) -> tuple[int, str, str]:
    """A derive-partition session that is not shown as an example: (id, external_id, label)."""
    shown = {e.session.external_id for e in spec.examples}
    with db_session(engine) as db:
        criterion = get_criterion(db, "resolved")
        splits = get_splits(db, criterion.id or 0)
        for label in db.exec(select(HumanLabel).where(HumanLabel.criterion_id == criterion.id)):
            if splits.get(label.session_id) == "derive":
                row = db.get_one(SessionRow, label.session_id)
                if row.external_id not in shown:
                    other = "no" if label.value == "yes" else "yes"
                    return label.session_id, row.external_id, other
    raise AssertionError("no derive session")


def test_recalibrate_records_partitions_and_a_new_calibration(
    reviewed: tuple[Engine, JudgeSpec, Path], database_url: str
) -> None:
    engine, spec, path = reviewed
    derive_id, derive_external, flipped = _derive_session(engine, spec)
    with db_session(engine) as db:
        add_labels(db, [_review(derive_external, flipped)], actor="test")

    result = run_cli(database_url, "recalibrate", "--judge", str(path), "--json")
    outcome = json.loads(result.stdout.strip().splitlines()[-1])

    with db_session(engine) as db:
        calibrations = list(db.exec(select(Calibration).order_by(Calibration.id)))  # type: ignore[arg-type]
        criterion = get_criterion(db, "resolved")
        splits = get_splits(db, criterion.id or 0)
        drift_ids = {
            row.id: key[1]
            for key, row in find_sessions(
                db, [("demo-support", e) for e in _drift_labels("resolved")]
            ).items()
        }
        seeds = {
            row.session_id: row.seed
            for row in db.exec(
                select(SplitAssignment).where(SplitAssignment.criterion_id == criterion.id)
            )
        }
    assert len(calibrations) == 2
    new = calibrations[-1]
    assert new.id == outcome["current"]["calibration_id"]
    assert outcome["previous"]["calibration_id"] == calibrations[0].id
    assert new.label_snapshot != calibrations[0].label_snapshot
    assert new.metrics["human_sources"] == ["sme", "review", "audit", "adjudication"]
    assert (new.alpha, new.delta) == (0.1, 0.1)
    assert {c["measure"] for c in outcome["changes"]} >= {"threshold", "coverage", "agreement"}

    # the reviewed derive session stays in derive and is never measured
    assert splits[derive_id] == "derive"
    assert derive_id not in partition_ids(engine, spec, "calibration")
    assert derive_id not in partition_ids(engine, spec, "test")
    # the reviewed drifted sessions got recorded calibration/test partitions by the hash rule
    reviewed_ids = [sid for sid in drift_ids if sid in splits]
    assert len(reviewed_ids) == REVIEWED
    assert outcome["assigned"]["calibration"] + outcome["assigned"]["test"] == REVIEWED
    assert spec.derivation is not None
    for session_id in reviewed_ids:
        expected = feedback_partition(
            "demo-support",
            drift_ids[session_id],
            criterion="resolved",
            seed=spec.derivation.seed,
            calibration_share=0.5,
        )
        assert splits[session_id] == expected
        assert seeds[session_id] == spec.derivation.seed
    assert new.metrics["n_calibration"] + new.metrics["n_test"] == (
        calibrations[0].metrics["n_calibration"] + calibrations[0].metrics["n_test"] + REVIEWED
    )

    # a second run assigns nothing new, and prints what changed
    again = run_cli(database_url, "recalibrate", "--judge", "resolved-v1", "--alpha", "0.2")
    assert "0 to calibration, 0 to test" in again.stdout
    for measure in ("threshold", "coverage", "agreement"):
        assert measure in again.stdout
    assert f"calibration {new.id}" in again.stdout


@pytest.fixture(autouse=True)
def _judges_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # run_cli passes os.environ on: judges are found by name under the test's folder
    monkeypatch.setenv("JUDGELOOP_JUDGES_DIR", str(tmp_path / "judges"))


def test_example_sessions_are_never_assigned(reviewed: tuple[Engine, JudgeSpec, Path]) -> None:
    engine, spec, _path = reviewed
    first = sorted(_drift_labels("resolved"))[0]
    shows_it = spec.model_copy(
        update={
            "examples": [
                *spec.examples,
                FewShotExample(
                    session=SessionRef(source="demo-support", external_id=first), label="yes"
                ),
            ]
        }
    )
    assigned = assign_new_sessions(engine, shows_it, actor="test")
    with db_session(engine) as db:
        shown_id = find_sessions(db, [("demo-support", first)])[("demo-support", first)].id
        splits = get_splits(db, get_criterion(db, "resolved").id or 0)
    assert len(assigned) == REVIEWED - 1 and shown_id not in assigned
    assert shown_id not in splits
    assert set(assigned.values()) == {"calibration", "test"}
    assert assign_new_sessions(engine, shows_it, actor="test") == {}


def test_export_writes_reviewed_cases_that_reimport(
    reviewed: tuple[Engine, JudgeSpec, Path], database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "golden.jsonl"
    run_cli(database_url, "export", "labels", "--criterion", "resolved", "--out", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == REVIEWED
    first = lines[0]
    assert set(first) == {
        "session",
        "criterion",
        "value",
        "annotator",
        "rationale",
        "correction",
        "source",
        "created_at",
    }
    assert first["session"]["source"] == "demo-support" and first["session"]["messages"]
    assert first["criterion"] == "resolved" and first["annotator"] == "reviewer-1"
    assert {line["source"] for line in lines} == {"review", "audit"}

    audit_only = run_cli(database_url, "export", "labels", "--source", "audit").stdout
    assert len(audit_only.splitlines()) == REVIEWED // 4

    corrections = tmp_path / "corrections.jsonl"
    run_cli(database_url, "export", "corrections", "--out", str(corrections))
    fixed = [json.loads(line) for line in corrections.read_text().splitlines()]
    assert len(fixed) == REVIEWED // 5 and all(line["correction"] for line in fixed)

    # a fresh database takes the file as it is: sessions and labels
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    run_cli(fresh, "db", "upgrade")
    run_cli(fresh, "import", "criteria", str(DEMO / "criteria.yaml"))
    imported = run_cli(fresh, "import", "labels", str(out))
    assert f"{REVIEWED} labels imported, 0 already stored" in imported.stdout
    again = run_cli(fresh, "import", "labels", str(out))
    assert f"0 labels imported, {REVIEWED} already stored" in again.stdout
    round_trip = tmp_path / "again.jsonl"
    run_cli(fresh, "export", "labels", "--out", str(round_trip))
    strip = [{k: v for k, v in line.items() if k != "created_at"} for line in lines]
    assert [
        {k: v for k, v in json.loads(line).items() if k != "created_at"}
        for line in round_trip.read_text().splitlines()
    ] == strip


def test_bad_arguments_say_what_is_wrong(
    reviewed: tuple[Engine, JudgeSpec, Path], database_url: str, tmp_path: Path
) -> None:
    _engine, _spec, path = reviewed
    cases = [
        (("export", "labels", "--source", "review,bogus"), "unknown label source(s) bogus"),
        (("export", "corrections", "--criterion", "nope"), "unknown criterion 'nope'"),
        (("recalibrate", "--judge", "no-such-judge"), "no judge file, name or version"),
        (("recalibrate", "--judge", str(path), "--method", "magic"), "isotonic or platt"),
        (("recalibrate", "--judge", str(path), "--sources", "sme,gossip"), "label sources"),
    ]
    for args, message in cases:
        result = run_cli(database_url, *args, check=False)
        assert result.returncode == 1, args
        assert message in result.stderr, (args, result.stderr)
    bad = tmp_path / "bad.jsonl"
    line = {
        "session": {"source": "demo-support", "external_id": "x", "messages": []},
        "criterion": "resolved",
        "value": "maybe",
        "annotator": "a",
    }
    bad.write_text(json.dumps(line) + "\n")
    refused = run_cli(database_url, "import", "labels", str(bad), check=False)
    assert refused.returncode == 1 and "bad.jsonl:1" in refused.stderr
