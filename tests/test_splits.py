"""Seeded stratified splits: deterministic, proportional, and recorded once."""

from __future__ import annotations

from collections import Counter

import pytest

from judgeloop.judges.splits import parse_sizes, stratified_split

SIZES = {"derive": 0.4, "calibration": 0.3, "test": 0.3}


def test_same_seed_same_split_other_seed_other_split() -> None:
    majority = {i: ("yes" if i % 3 else "no") for i in range(300)}
    first = stratified_split(majority, SIZES, seed=1)
    assert first == stratified_split(dict(reversed(majority.items())), SIZES, seed=1)
    assert first != stratified_split(majority, SIZES, seed=2)


def test_every_label_is_split_in_proportion() -> None:
    majority = {i: ("yes" if i < 200 else "no") for i in range(300)}
    split = stratified_split(majority, SIZES, seed=0)
    by_label = Counter((majority[i], p) for i, p in split.items())
    assert by_label[("yes", "derive")] == 80 and by_label[("no", "derive")] == 40
    assert by_label[("yes", "calibration")] == 60 and by_label[("no", "test")] == 30
    assert len(split) == 300


def test_sizes_are_checked() -> None:
    assert parse_sizes("0.5,0.25,0.25")["derive"] == 0.5
    for bad in ("0.5,0.5", "a,b,c", "0.5,0.5,0.5", "0,0.5,0.5"):
        with pytest.raises(ValueError):
            parse_sizes(bad)
