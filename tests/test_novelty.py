"""Novelty against the calibration texts: TF-IDF nearest neighbour, leave-one-out threshold."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from judgeloop.escalation import NoveltyModel
from judgeloop.judges.outcome import SessionInput
from judgeloop.judges.render import render_transcript

DEMO = Path(__file__).resolve().parents[1] / "datasets" / "demo"

OPENINGS = ["hi", "hello there", "good morning", "hey", "dear support team", "excuse me"]
REQUESTS = [
    "where is my order, the tracking says in transit and the parcel is late",
    "I want a refund, the jacket arrived damaged with a tear",
    "please change the email address on my account",
    "the boots are too small, can I return them for a bigger size",
    "my rain shell leaks at the seams after one hike",
    "can you cancel the order before it ships",
]
CLOSINGS = ["thanks", "thank you so much", "cheers", "appreciate it", "bye", "kind regards"]


def support_texts(count: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(OPENINGS)}, order {rng.randint(10000, 99999)}: {rng.choice(REQUESTS)}. "
        f"{rng.choice(CLOSINGS)}"
        for _ in range(count)
    ]


def test_off_topic_text_is_more_novel_than_in_distribution_text() -> None:
    model = NoveltyModel.fit(support_texts(200), quantile=0.99)
    in_distribution = model.score(support_texts(1, seed=99)[0])
    paraphrase = model.score("my order 55555 is late, the tracking says in transit")
    off_topic = model.score("explain the thermodynamics of black holes and hawking radiation")
    assert in_distribution <= model.threshold < off_topic
    assert in_distribution < paraphrase < off_topic


def test_threshold_is_the_quantile_of_leave_one_out_novelty() -> None:
    texts = support_texts(100) + ["a completely different sentence about gardening tomatoes"]
    strict = NoveltyModel.fit(texts, quantile=0.99)
    lenient = NoveltyModel.fit(texts, quantile=0.5)
    # The one unusual fitting text sits above the 0.99 quantile only if it were left out of the
    # quantile; the median is far below it.
    assert lenient.threshold < strict.threshold
    assert 0.0 <= lenient.threshold <= strict.threshold <= 1.0
    assert strict.n_texts == 101


def test_score_many_matches_score() -> None:
    model = NoveltyModel.fit(support_texts(50))
    texts = ["refund for a damaged jacket", "quantum chromodynamics", ""]
    assert model.score_many(texts) == [model.score(t) for t in texts]
    assert model.score_many([]) == []
    assert model.score("") == 1.0


def test_ids_and_numbers_do_not_make_a_session_novel() -> None:
    model = NoveltyModel.fit(support_texts(100))
    assert model.score("where is my order 12345678, the tracking says in transit") < 0.3


def test_fitting_needs_at_least_two_texts() -> None:
    with pytest.raises(ValueError, match="at least two"):
        NoveltyModel.fit(["only one"])


def _demo_transcripts(filename: str, batch: str) -> list[str]:
    texts = []
    for line in (DEMO / filename).open(encoding="utf-8"):
        data = json.loads(line)
        if data["metadata"]["batch"] != batch:
            continue
        session = SessionInput(
            id=0,
            source=data["source"],
            external_id=data["external_id"],
            messages=data["messages"],
            metadata=data["metadata"],
            content_hash="",
        )
        texts.append(render_transcript(session))
    return texts


def test_the_demo_drift_batch_is_more_novel_than_held_out_main_sessions() -> None:
    main = _demo_transcripts("sessions.jsonl", "main")
    drift = _demo_transcripts("drift_sessions.jsonl", "drift")
    model = NoveltyModel.fit(main[:200], quantile=0.99)
    held_out = model.score_many(main[200:])
    drifted = model.score_many(drift)
    share_held_out = sum(s > model.threshold for s in held_out) / len(held_out)
    share_drifted = sum(s > model.threshold for s in drifted) / len(drifted)
    assert share_held_out <= 0.05
    assert share_drifted >= 0.25
    assert sum(drifted) / len(drifted) > sum(held_out) / len(held_out)
