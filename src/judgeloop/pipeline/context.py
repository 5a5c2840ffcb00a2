"""Per criterion, what the pipeline needs: active judge, calibration, policy, novelty, drift."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from judgeloop.calibration.calibrators import Calibrator
from judgeloop.escalation import CriterionPolicy, EscalationPolicy, NoveltyModel
from judgeloop.judges.loading import load_inputs
from judgeloop.judges.render import render_transcript
from judgeloop.judges.runner import LoadedJudge, load_judge
from judgeloop.judges.spec import JudgeSpec
from judgeloop.models import Calibration, Criterion, JudgeVersion
from judgeloop.store import db_session, get_splits, judgments_for_version
from judgeloop.store.judges import active_judge_versions

# Novelty is measured against at most this many calibration sessions: enough to describe the
# distribution, few enough to keep the nearest-neighbour search cheap per session.
NOVELTY_REFERENCE_LIMIT = 2000


@dataclass
class CriterionContext:
    """Everything needed to score and decide one criterion with its active judge version."""

    criterion: Criterion
    spec: JudgeSpec
    judge: LoadedJudge
    policy: CriterionPolicy
    calibration_id: int | None
    calibrator: Calibrator | None
    threshold: float | None
    novelty: NoveltyModel | None
    reference_histogram: dict[str, float]

    @property
    def criterion_id(self) -> int:
        """The criterion's id (always stored)."""
        assert self.criterion.id is not None
        return self.criterion.id

    def calibrate(self, raw_confidence: float | None) -> float | None:
        """Calibrated confidence: P(the judge agrees with the humans) for this raw value."""
        if raw_confidence is None:
            return None
        if self.calibrator is None:
            return float(raw_confidence)
        return float(self.calibrator.predict(np.array([raw_confidence]))[0])


def latest_calibration_id(db: DbSession, version: str) -> int | None:
    """Id of the newest calibration of ``version`` (None when it has none)."""
    return db.exec(
        select(Calibration.id)
        .where(Calibration.judge_version_id == version)
        .order_by(col(Calibration.id).desc())
    ).first()


def signature(db: DbSession) -> tuple[tuple[str, int | None], ...]:
    """Active versions with their newest calibration: contexts are stale when this changes."""
    return tuple((row.id, latest_calibration_id(db, row.id)) for row in active_judge_versions(db))


def load_contexts(
    engine: Engine, policy: EscalationPolicy, *, judges_dir: Path | None = None
) -> list[CriterionContext]:
    """A context per active judge version, its backend loaded and its novelty model fitted."""
    with db_session(engine) as db:
        active = active_judge_versions(db)
    return [load_context(engine, row, policy, judges_dir=judges_dir) for row in active]


def load_context(
    engine: Engine, row: JudgeVersion, policy: EscalationPolicy, *, judges_dir: Path | None
) -> CriterionContext:
    """The context of one judge version: backend, newest calibration, novelty, histogram."""
    spec = JudgeSpec.model_validate(row.spec)
    with db_session(engine) as db:
        criterion = db.get(Criterion, row.criterion_id)
        assert criterion is not None and criterion.id is not None
        calibration = db.exec(
            select(Calibration)
            .where(Calibration.judge_version_id == row.id)
            .order_by(col(Calibration.id).desc())
        ).first()
        splits = get_splits(db, criterion.id)
        calibration_ids = sorted(s for s, p in splits.items() if p == "calibration")
        reference = load_inputs(db, calibration_ids[:NOVELTY_REFERENCE_LIMIT])
        judged = [
            j
            for j in judgments_for_version(db, row.id)
            if j.session_id in set(calibration_ids) and j.label is not None
        ]
    criterion_policy = policy.for_criterion(criterion.name)
    novelty = None
    if len(reference) >= 10:
        texts = [render_transcript(reference[i]) for i in sorted(reference)]
        novelty = NoveltyModel.fit(texts, quantile=criterion_policy.novelty_quantile)
    counts = Counter(str(j.label) for j in judged)
    total = sum(counts.values())
    histogram = {label: counts.get(label, 0) / total for label in criterion.labels} if total else {}
    calibrator = None
    if calibration is not None and calibration.calibrator:
        calibrator = Calibrator.from_dict(calibration.calibrator)
    return CriterionContext(
        criterion=criterion,
        spec=spec,
        judge=load_judge(engine, spec, judges_dir=judges_dir),
        policy=criterion_policy,
        calibration_id=calibration.id if calibration else None,
        calibrator=calibrator,
        threshold=calibration.threshold if calibration else None,
        novelty=novelty,
        reference_histogram=histogram,
    )
