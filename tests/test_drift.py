"""Drift detectors (pure) and their persisted monitors (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import random
import threading

import pytest
from sqlalchemy import Engine
from sqlmodel import func, select

from judgeloop.escalation import AgreementWindow, LabelPSI, PageHinkley
from judgeloop.escalation.drift import population_stability_index
from judgeloop.models import AuditEvent, CriterionCreate, DriftMonitor
from judgeloop.store import (
    add_criteria,
    db_session,
    drift_alarms,
    drift_monitors,
    observe_agreement,
    observe_label,
    reset_drift,
)


def bernoulli(rate: float, count: int, rng: random.Random) -> list[float]:
    return [1.0 if rng.random() < rate else 0.0 for _ in range(count)]


def run(detector: object, stream: list[object]) -> tuple[dict[str, object], int | None]:
    """Feed ``stream``; return the final state and the index of the first alarm."""
    state: dict[str, object] | None = None
    first_alarm = None
    for index, x in enumerate(stream):
        state, alarmed = detector.update(state, x)  # type: ignore[attr-defined]
        json.dumps(state)  # state must stay JSON
        if alarmed and first_alarm is None:
            first_alarm = index
    assert state is not None
    return state, first_alarm


# --------------------------------------------------------------------------- Page-Hinkley


@pytest.mark.parametrize("seed", range(5))
def test_page_hinkley_is_quiet_on_a_stable_stream(seed: int) -> None:
    stream = bernoulli(0.85, 2000, random.Random(seed))
    _state, alarm = run(PageHinkley(), stream)
    assert alarm is None


@pytest.mark.parametrize("seed", range(5))
def test_page_hinkley_alarms_soon_after_agreement_drops(seed: int) -> None:
    rng = random.Random(seed)
    stream = bernoulli(0.9, 300, rng) + bernoulli(0.5, 300, rng)
    _state, alarm = run(PageHinkley(), stream)
    assert alarm is not None
    assert 300 <= alarm < 300 + 100


def test_page_hinkley_ignores_a_rise_in_agreement() -> None:
    rng = random.Random(7)
    stream = bernoulli(0.6, 300, rng) + bernoulli(0.95, 300, rng)
    assert run(PageHinkley(), stream)[1] is None


def test_page_hinkley_waits_for_min_samples() -> None:
    _state, alarm = run(PageHinkley(threshold=1.0, min_samples=30), [1.0] * 5 + [0.0] * 30)
    assert alarm == 29


# --------------------------------------------------------------------------- windowed test


@pytest.mark.parametrize("seed", range(5))
def test_agreement_window_is_quiet_on_a_stable_stream(seed: int) -> None:
    stream = bernoulli(0.85, 2000, random.Random(seed))
    assert run(AgreementWindow(), stream)[1] is None


def test_agreement_window_alarms_when_recent_agreement_is_lower() -> None:
    rng = random.Random(11)
    stream = bernoulli(0.9, 200, rng) + bernoulli(0.5, 100, rng)
    state, alarm = run(AgreementWindow(), stream)
    assert alarm is not None and 200 <= alarm < 260
    assert len(state["recent"]) == 50  # type: ignore[arg-type]
    assert state["reference_n"] == 250


# --------------------------------------------------------------------------- PSI


def test_psi_of_identical_histograms_is_zero_and_grows_with_shift() -> None:
    reference = {"yes": 0.7, "no": 0.3}
    assert population_stability_index(reference, {"yes": 70, "no": 30}) == pytest.approx(0.0)
    small = population_stability_index(reference, {"yes": 65, "no": 35})
    large = population_stability_index(reference, {"yes": 30, "no": 70})
    assert 0 < small < 0.1 < 0.25 < large


def test_label_psi_alarms_on_a_shifted_histogram_not_on_a_matching_one() -> None:
    rng = random.Random(5)
    reference = {"yes": 0.7, "no": 0.3}
    detector = LabelPSI(reference=reference)
    matching = ["yes" if rng.random() < 0.7 else "no" for _ in range(500)]
    assert run(detector, matching)[1] is None
    shifted = ["yes" if rng.random() < 0.3 else "no" for _ in range(500)]
    state, alarm = run(detector, matching[:200] + shifted)
    assert alarm is not None
    assert state["psi"] > 0.25  # type: ignore[operator]
    assert len(state["recent"]) == 200  # type: ignore[arg-type]


def test_label_psi_needs_a_minimum_count() -> None:
    detector = LabelPSI(reference={"yes": 0.9, "no": 0.1}, min_count=50)
    state, alarm = run(detector, ["no"] * 49)
    assert alarm is None and state["psi"] > 1  # type: ignore[operator]
    assert detector.update(state, "no")[1] is True


def test_a_label_never_seen_in_calibration_counts_as_shift() -> None:
    detector = LabelPSI(reference={"1": 0.5, "2": 0.5}, min_count=10)
    assert run(detector, ["3"] * 20)[1] == 9


# --------------------------------------------------------------------------- persisted


@pytest.fixture
def criterion_id(engine: Engine) -> int:
    with db_session(engine) as db:
        [(row, _created)] = add_criteria(
            db, [CriterionCreate(name="resolved", kind="binary", labels=["yes", "no"])], actor="t"
        )
        assert row.id is not None
        return row.id


def test_observe_agreement_persists_state_and_latches_alarms(
    engine: Engine, criterion_id: int
) -> None:
    rng = random.Random(3)
    with db_session(engine) as db:
        for agreed in bernoulli(0.9, 200, rng):
            assert observe_agreement(db, criterion_id, bool(agreed)) == []
        assert drift_alarms(db, criterion_id) == []
    with db_session(engine) as db:
        alarmed: list[str] = []
        for agreed in bernoulli(0.3, 150, rng):
            alarmed = observe_agreement(db, criterion_id, bool(agreed))
        assert alarmed == ["page_hinkley", "agreement_window"]
        # Agreement recovering does not silence the alarm: only a reset does.
        for _ in range(50):
            observe_agreement(db, criterion_id, True)
    with db_session(engine) as db:
        assert drift_alarms(db, criterion_id) == ["agreement_window", "page_hinkley"]
        monitors = {m.detector: m for m in drift_monitors(db, criterion_id)}
        assert monitors["page_hinkley"].state["n"] == 400
        assert monitors["page_hinkley"].alarmed_at is not None
        alarm_events = select(func.count()).where(AuditEvent.action == "drift.alarm")
        events = db.exec(alarm_events).one()
        assert events == 2


def test_observe_label_alarms_on_a_shifted_label_histogram(
    engine: Engine, criterion_id: int
) -> None:
    reference = {"yes": 0.8, "no": 0.2}
    with db_session(engine) as db:
        for index in range(100):
            observe_label(db, criterion_id, "yes" if index % 5 else "no", reference)
        assert drift_alarms(db, criterion_id) == []
        for _ in range(100):
            observe_label(db, criterion_id, "no", reference)
        assert drift_alarms(db, criterion_id) == ["label_psi"]


def test_reset_drift_forgets_state_and_alarms(engine: Engine, criterion_id: int) -> None:
    with db_session(engine) as db:
        for _ in range(60):
            observe_label(db, criterion_id, "no", {"yes": 1.0})
        assert drift_alarms(db, criterion_id) == ["label_psi"]
        assert reset_drift(db, criterion_id, actor="engineer") == 1
        assert drift_alarms(db, criterion_id) == []
        assert drift_monitors(db, criterion_id) == []
        observe_label(db, criterion_id, "yes", {"yes": 1.0})
        [monitor] = drift_monitors(db, criterion_id)
        assert monitor.state["recent"] == ["yes"]


def test_monitors_of_criteria_are_separate(engine: Engine, criterion_id: int) -> None:
    with db_session(engine) as db:
        [(other, _)] = add_criteria(
            db, [CriterionCreate(name="tone", kind="ordinal", labels=["1", "2"])], actor="t"
        )
        assert other.id is not None
        for _ in range(60):
            observe_label(db, criterion_id, "no", {"yes": 1.0})
        assert drift_alarms(db, other.id) == []
        assert drift_alarms(db, criterion_id) == ["label_psi"]


def test_concurrent_observations_lose_no_update(engine: Engine, criterion_id: int) -> None:
    workers, per_worker = 8, 15
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def work(worker: int) -> None:
        try:
            start.wait()
            with db_session(engine) as db:
                for index in range(per_worker):
                    observe_agreement(db, criterion_id, (worker + index) % 4 != 0)
                    observe_label(db, criterion_id, "yes", {"yes": 0.5, "no": 0.5})
        except BaseException as error:  # noqa: BLE001 (re-raised in the main thread)
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with db_session(engine) as db:
        monitors = {m.detector: m for m in drift_monitors(db, criterion_id)}
        assert set(monitors) == {"page_hinkley", "agreement_window", "label_psi"}
        total = workers * per_worker
        assert monitors["page_hinkley"].state["n"] == total
        window = monitors["agreement_window"].state
        assert window["reference_n"] + len(window["recent"]) == total
        assert len(monitors["label_psi"].state["recent"]) == min(total, 200)
        assert db.exec(select(func.count()).select_from(DriftMonitor)).one() == 3
