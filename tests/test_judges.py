"""Judges on the demo data: derivation, leak-free splits, classifier scoring, cascades."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DatabaseError
from sqlmodel import select

from judgeloop.judges.derive import DeriveOptions, derive_spec
from judgeloop.judges.runner import LeakError, example_keys, score
from judgeloop.judges.spec import JudgeSpec, SpecError, TierSpec, dump_spec, load_spec
from judgeloop.models import Judgment, SplitAssignment
from judgeloop.store import db_session, find_sessions, get_criterion, get_splits
from tests.conftest import REPO_ROOT
from tests.stub_llm import StubLLM, StubReply

DEMO = REPO_ROOT / "datasets" / "demo"
CRITERIA = ("resolved", "policy_compliant", "tone", "safety")


def _derive(engine: Engine, criterion: str, seed: int = 0, **kwargs: object) -> JudgeSpec:
    options = DeriveOptions(criterion=criterion, name=f"{criterion}-v1", seed=seed, **kwargs)  # type: ignore[arg-type]
    return derive_spec(engine, options, actor="test").spec


def _partition_keys(engine: Engine, criterion: str) -> dict[str, set[tuple[str, str]]]:
    from judgeloop.judges.loading import session_keys_of

    with db_session(engine) as db:
        criterion_id = get_criterion(db, criterion).id
        assert criterion_id is not None
        splits = get_splits(db, criterion_id)
        keys = session_keys_of(db, splits)
    result: dict[str, set[tuple[str, str]]] = {"derive": set(), "calibration": set(), "test": set()}
    for session_id, partition in splits.items():
        result[partition].add(keys[session_id])
    return result


def test_derive_is_reproducible_and_never_leaks(demo_engine: Engine, tmp_path: Path) -> None:
    for criterion in CRITERIA:
        spec = _derive(demo_engine, criterion)
        again = _derive(demo_engine, criterion)
        assert dump_spec(spec) == dump_spec(again) and spec.version == again.version
        path = tmp_path / criterion / "v1.yaml"
        path.parent.mkdir()
        path.write_text(dump_spec(spec))
        assert load_spec(path).version == spec.version

        partitions = _partition_keys(demo_engine, criterion)
        assert sum(len(p) for p in partitions.values()) == 420
        assert not partitions["derive"] & (partitions["calibration"] | partitions["test"])
        assert not partitions["calibration"] & partitions["test"]
        shown = example_keys(spec)
        assert shown and shown <= partitions["derive"]
        assert {e.label for e in spec.examples} == set(spec.criterion.labels)
        assert spec.rubric.startswith(spec.criterion.description.strip()[:20])


def test_another_seed_never_moves_a_recorded_session(demo_engine: Engine) -> None:
    _derive(demo_engine, "resolved", seed=1)
    before = _partition_keys(demo_engine, "resolved")
    spec = _derive(demo_engine, "resolved", seed=2)
    assert _partition_keys(demo_engine, "resolved") == before
    assert example_keys(spec) <= before["derive"]
    with pytest.raises(DatabaseError, match="append-only"):
        with demo_engine.begin() as connection:
            connection.execute(text("UPDATE split_assignments SET partition = 'test'"))


def test_classifier_scores_every_test_session_once(demo_engine: Engine, tmp_path: Path) -> None:
    spec = _derive(demo_engine, "tone")
    partitions = _partition_keys(demo_engine, "tone")
    with db_session(demo_engine) as db:
        rows = find_sessions(db, sorted(partitions["test"]))
    ids = [row.id for row in rows.values() if row.id is not None]
    report = score(demo_engine, spec, ids, actor="test", forbid_examples=True)
    assert report.judged == len(ids) and report.errors == 0
    again = score(demo_engine, spec, ids, actor="test", forbid_examples=True)
    assert again.judged == 0 and again.already_judged == len(ids)
    with db_session(demo_engine) as db:
        judgments = db.exec(select(Judgment).where(Judgment.judge_version_id == spec.version)).all()
    assert len(judgments) == len(ids)
    for judgment in judgments:
        distribution = judgment.detail["label_distribution"]
        assert judgment.label in spec.criterion.labels
        assert judgment.raw_confidence == pytest.approx(max(distribution.values()))
        assert sum(distribution.values()) == pytest.approx(1.0)
    # better than always answering the most common label
    from judgeloop.judges.votes import collect_votes, majority_labels
    from judgeloop.store import labels_for_criterion

    with db_session(demo_engine) as db:
        criterion = get_criterion(db, "tone")
        majority = majority_labels(
            criterion, collect_votes(labels_for_criterion(db, criterion.id or 0))
        )
    agreement = sum(j.label == majority[j.session_id] for j in judgments) / len(judgments)
    base_rate = max(list(majority.values()).count(label) for label in criterion.labels) / len(
        majority
    )
    assert agreement > base_rate + 0.1


def test_scoring_an_example_for_measurement_is_refused(demo_engine: Engine) -> None:
    spec = _derive(demo_engine, "resolved")
    example = spec.examples[0].session
    with db_session(demo_engine) as db:
        row = find_sessions(db, [(example.source, example.external_id)])[
            (example.source, example.external_id)
        ]
    with pytest.raises(LeakError, match="as examples"):
        score(demo_engine, spec, [row.id or 0], actor="test", forbid_examples=True)
    with db_session(demo_engine) as db:
        assert db.exec(select(Judgment)).first() is None


def _write_tiers(judges_dir: Path, cheap: JudgeSpec, stub_llm: StubLLM) -> None:
    """resolved/cheap.yaml (the classifier) and resolved/strong.yaml (an LLM on the stub)."""
    strong = cheap.model_copy(
        update={
            "name": "resolved-llm",
            "backend": "litellm",
            "model": "openai/stub-judge",
            "api_base": f"{stub_llm.url}/v1",
            "classifier": None,
            "confidence": cheap.confidence.model_copy(update={"method": "logprobs"}),
        }
    )
    (judges_dir / "resolved").mkdir()
    (judges_dir / "resolved" / "cheap.yaml").write_text(dump_spec(cheap))
    (judges_dir / "resolved" / "strong.yaml").write_text(
        dump_spec(JudgeSpec.model_validate(strong.model_dump()))
    )


def test_cascade_runs_the_strong_tier_only_below_the_threshold(
    demo_engine: Engine, tmp_path: Path, stub_llm: StubLLM
) -> None:
    cheap = _derive(demo_engine, "resolved")
    _write_tiers(tmp_path, cheap, stub_llm)
    cascade = JudgeSpec(
        name="resolved-cascade",
        criterion=cheap.criterion,
        tiers=[
            TierSpec(judge="resolved/cheap.yaml", threshold=0.8),
            TierSpec(judge="resolved/strong.yaml", threshold=0.5),
        ],
    )
    stub_llm.responder = lambda body: StubReply.label_first({"yes": 0.9, "no": 0.1})
    test_keys = sorted(_partition_keys(demo_engine, "resolved")["test"])[:40]
    with db_session(demo_engine) as db:
        ids = [row.id or 0 for row in find_sessions(db, test_keys).values()]
    report = score(demo_engine, cascade, ids, actor="test", judges_dir=tmp_path)
    assert report.judged == 40 and report.errors == 0
    with db_session(demo_engine) as db:
        judgments = db.exec(
            select(Judgment).where(Judgment.judge_version_id == cascade.version)
        ).all()
    by_tier = [j.detail["tier"] for j in judgments]
    escalated_to_llm = by_tier.count(1)
    assert by_tier.count(0) + escalated_to_llm == 40
    assert escalated_to_llm == len(stub_llm.requests) > 0
    for judgment in judgments:
        first = judgment.detail["path"][0]
        assert (first["confidence"] >= 0.8) == (judgment.detail["tier"] == 0)


def test_a_calibrated_tier_decides_by_its_calibrated_threshold(
    demo_engine: Engine, tmp_path: Path, stub_llm: StubLLM
) -> None:
    from judgeloop.calibration.calibrate import calibrate_judge

    cheap = _derive(demo_engine, "resolved")
    calibrated = calibrate_judge(
        demo_engine, cheap, alpha=0.1, delta=0.1, actor="test", n_resamples=100
    )
    lambda_ = calibrated.threshold.lambda_
    assert lambda_ is not None
    _write_tiers(tmp_path, cheap, stub_llm)
    # The spec's threshold of 0 would let the cheap tier decide everything; its calibration
    # (λ on calibrated confidence) overrides it.
    cascade = JudgeSpec(
        name="resolved-cascade",
        criterion=cheap.criterion,
        tiers=[
            TierSpec(judge="resolved/cheap.yaml", threshold=0.0),
            TierSpec(judge="resolved/strong.yaml", threshold=0.5),
        ],
    )
    stub_llm.responder = lambda body: StubReply.label_first({"yes": 0.9, "no": 0.1})
    test_keys = sorted(_partition_keys(demo_engine, "resolved")["test"])[:40]
    with db_session(demo_engine) as db:
        ids = [row.id or 0 for row in find_sessions(db, test_keys).values()]
    score(demo_engine, cascade, ids, actor="test", judges_dir=tmp_path)
    with db_session(demo_engine) as db:
        judgments = db.exec(
            select(Judgment).where(Judgment.judge_version_id == cascade.version)
        ).all()
    assert len(judgments) == 40
    tiers = [j.detail["tier"] for j in judgments]
    assert 0 < tiers.count(1) < 40  # the calibrated bar sends some sessions on
    for judgment in judgments:
        first = judgment.detail["path"][0]
        assert first["threshold_from"] == "calibration" and first["threshold"] == lambda_
        assert (first["gate_confidence"] >= lambda_) == (judgment.detail["tier"] == 0)
        assert (
            judgment.detail["path"][-1]["threshold_from"] == "spec"
            or len(judgment.detail["path"]) == 1
        )


def test_spec_files_are_strict_and_versioned_by_content(tmp_path: Path) -> None:
    spec = JudgeSpec(
        name="j",
        criterion={"name": "resolved", "kind": "binary", "labels": ["yes", "no"]},
        model="openai/gpt-4o-mini",
    )
    path = tmp_path / "j.yaml"
    path.write_text(dump_spec(spec))
    assert load_spec(path).version == spec.version
    path.write_text(dump_spec(spec) + "temprature: 0.5\n")
    with pytest.raises(SpecError, match="temprature"):
        load_spec(path)
    edited = spec.model_copy(update={"rubric": "Be strict."})
    assert JudgeSpec.model_validate(edited.model_dump()).version != spec.version
    with pytest.raises(ValueError, match="needs a model"):
        JudgeSpec(name="j", criterion=spec.criterion)


def test_split_rows_are_recorded_per_session(demo_engine: Engine) -> None:
    _derive(demo_engine, "safety")
    with db_session(demo_engine) as db:
        rows = db.exec(select(SplitAssignment)).all()
    assert len(rows) == 420 and {r.seed for r in rows} == {0}


def test_optimize_keeps_a_revision_only_when_derive_agreement_improves(
    demo_engine: Engine, tmp_path: Path, stub_llm: StubLLM
) -> None:
    import json
    import re

    from judgeloop.judges.backends import build_backend
    from judgeloop.judges.loading import resolve_examples
    from judgeloop.judges.optimize import optimize_rubric
    from judgeloop.judges.render import render_transcript

    options = DeriveOptions(
        criterion="resolved",
        name="resolved-llm",
        backend="litellm",
        model="openai/stub-judge",
        sizes=(("derive", 0.2), ("calibration", 0.4), ("test", 0.4)),
    )
    result = derive_spec(demo_engine, options, actor="test")
    spec = result.spec.model_copy(update={"api_base": f"{stub_llm.url}/v1"})
    truth = {render_transcript(e.session): e.example.label for e in result.evaluation}

    def responder(body: dict) -> StubReply:
        text = "\n".join(str(m.get("content")) for m in body["messages"])
        if "Propose a revised rubric" in text:
            return StubReply(content="REVISED: resolved means the customer's request was met.")
        judged = re.findall(r"<session>\n(.*?)\n</session>", text, flags=re.S)[-1]
        label = truth.get(judged, "no") if "REVISED" in text else "no"
        return StubReply.label_first({label: 0.9, ("no" if label == "yes" else "yes"): 0.1})

    stub_llm.responder = responder
    with db_session(demo_engine) as db:
        examples = resolve_examples(db, spec.examples)

    async def run() -> tuple[JudgeSpec, list]:
        return await optimize_rubric(
            spec, result.evaluation, lambda s: build_backend(s, examples, []), rounds=3
        )

    import asyncio

    best, history = asyncio.run(run())
    assert history[0].kept and history[0].agreement_after == 1.0
    assert history[0].agreement_before < 1.0
    assert len(history) == 1  # no mistakes left: no more rounds
    assert best.rubric.startswith("REVISED") and best.version != spec.version
    held_out = _partition_keys(demo_engine, "resolved")
    with db_session(demo_engine) as db:
        held_out_rows = find_sessions(db, sorted(held_out["calibration"] | held_out["test"]))
    from judgeloop.judges.loading import as_input

    held_out_transcripts = [render_transcript(as_input(r)) for r in held_out_rows.values()]
    sent = json.dumps(stub_llm.requests)
    assert not any(json.dumps(t)[1:-1] in sent for t in held_out_transcripts[:50])
