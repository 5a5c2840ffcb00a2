"""Importers of the public human-labelled judge datasets, against the data where it lives.

The datasets are read from $JUDGELOOP_PUBLIC_DATA_DIR (default ../shared/datasets); nothing
of them is copied here. Tests that need them skip when they are absent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import select

from judgeloop.models import Criterion, HumanLabel, Session
from judgeloop.sessions.public import (
    DATA_DIR_ENV,
    FORMATS,
    Converted,
    DatasetError,
    data_dir,
    find_data_dir,
    store_converted,
)
from judgeloop.sessions.public.base import order_votes_to_probs
from judgeloop.sessions.public.llmbar import subset_name
from judgeloop.sessions.public.pandalm import parse_verdict
from judgeloop.sessions.public.xstest import parse_label
from judgeloop.store import db_session

DATA_DIR = find_data_dir()
needs_data = pytest.mark.skipif(
    DATA_DIR is None or not DATA_DIR.is_dir(),
    reason=(
        f"public datasets not found: set {DATA_DIR_ENV} or put them at ../shared/datasets "
        "(see ../shared/datasets/MANIFEST.md)"
    ),
)


@cache
def converted(name: str) -> Converted:
    return FORMATS[name]()


def majority(labels: list[str]) -> str | None:
    ranked = Counter(labels).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


# --------------------------------------------------------------------------- no data needed


def test_pairwise_verdicts_are_read_robustly() -> None:
    assert [parse_verdict(v) for v in ("1", 2, "Tie", "tie", 0, " 2. ", "Response 1")] == [
        "1",
        "2",
        "tie",
        "tie",
        "tie",
        "2",
        "1",
    ]
    assert [parse_verdict(v) for v in ("garbage", "", None, True, 3, "1 or 2")] == [None] * 6


def test_xstest_labels_are_read_and_free_text_is_not() -> None:
    assert parse_label("1_full_compliance") == "full_compliance"
    assert parse_label("3_partial_refusal") == "partial_refusal"
    assert parse_label("full refusal") == "full_refusal"
    assert parse_label("I'm sorry, but I can't assist with that.") is None


def test_both_orders_become_probabilities() -> None:
    labels = ["1", "2"]
    assert order_votes_to_probs(["1", "1"], labels) == {"1": 1.0, "2": 0.0}
    assert order_votes_to_probs(["1", "2"], labels) == {"1": 0.5, "2": 0.5}
    assert order_votes_to_probs(["2", None], labels) == {"1": 0.25, "2": 0.75}
    assert order_votes_to_probs([None, None], labels) is None


def test_missing_data_dir_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match=DATA_DIR_ENV):
        data_dir()
    with pytest.raises(DatasetError, match="no such file"):
        FORMATS["qags"](tmp_path / "missing")


def test_errors_name_the_file_and_the_record(tmp_path: Path) -> None:
    # Synthetic files in the datasets' shapes, so that no dataset content is copied.
    pair = {"instruction": "Say hi.", "input": "", "response1": "hi", "response2": "hello"}
    testset = tmp_path / "testset-v1.json"
    testset.write_text(
        json.dumps(
            [
                {"idx": 0, **pair, "annotator1": 1, "annotator2": 2, "annotator3": 0},
                {"idx": 1, **pair, "annotator1": 1, "annotator2": 7, "annotator3": 0},
            ]
        )
    )
    with pytest.raises(DatasetError) as error:
        FORMATS["pandalm"](tmp_path)
    assert str(error.value) == (f"{testset}: record 1: annotator2 is 7; expected 0 (tie), 1 or 2")

    qags = tmp_path / "mturk_toy.jsonl"
    qags.write_text(
        json.dumps({"article": "A.", "summary_sentences": []})
        + "\n"
        + json.dumps(
            {
                "article": "B.",
                "summary_sentences": [
                    {"sentence": "b", "responses": [{"worker_id": 1, "response": "maybe"}]}
                ],
            }
        )
        + "\n{oops\n"
    )
    with pytest.raises(DatasetError, match=re.escape(f"{qags}: line 2: summary_sentences.0")):
        FORMATS["qags"](qags)


# --------------------------------------------------------------------------- counts


@needs_data
def test_pandalm_matches_the_manifest() -> None:
    data = converted("pandalm")
    assert len(data.sessions) == 999
    assert data.annotators_per_item() == Counter({3: 999})
    assert {x.annotator for x in data.labels} == {"annotator1", "annotator2", "annotator3"}
    assert Counter(x.value for x in data.labels) == Counter({"2": 1416, "1": 1255, "tie": 326})
    assert data.judges == ["gpt-3.5-turbo", "pandalm-7b"]
    # GPT-3.5's 25 "garbage" verdicts are the only unreadable ones.
    assert {j: len(ids) for j, ids in data.unparseable.items()} == {
        "gpt-3.5-turbo": 25,
        "pandalm-7b": 0,
    }
    assert sum("gpt-3.5-turbo" in row["judges"] for row in data.replay) == 974
    first = data.sessions[0]
    assert first.external_id == "testset-v1/0"
    assert [m.role for m in first.messages] == ["user"]
    assert (
        first.messages[0].content == f"{first.metadata['instruction']}\n\n{first.metadata['input']}"
    )
    assert [c["id"] for c in first.metadata["candidates"]] == ["1", "2"]
    assert all(
        isinstance(c["content"], str) for s in data.sessions for c in s.metadata["candidates"]
    )


@needs_data
def test_llmbar_matches_the_manifest() -> None:
    data = converted("llmbar")
    subsets = Counter(s.metadata["subset"] for s in data.sessions)
    assert sum(n for name, n in subsets.items() if name.startswith("LLMBar/")) == 419
    assert subsets["LLMBar/Natural"] == 100
    assert {name for name in subsets if name.startswith("Processed/")} == {
        "Processed/MT-Bench",
        "Processed/LLMEval^2",
        "Processed/FairEval",
    }
    assert len(data.sessions) == len(data.labels) == len(data.replay) == 885
    assert {x.annotator for x in data.labels} == {"gold"}
    assert {"GPT-4/Vanilla", "GPT-4/Swap_CoT", "ChatGPT/CoT", "Falcon/Vanilla"} <= set(data.judges)
    assert len({judge.split("/")[0] for judge in data.judges}) == 6
    assert sum(len(ids) for ids in data.unparseable.values()) == 273


@needs_data
def test_llmbar_replay_reproduces_the_recorded_accuracies() -> None:
    # Each strategy's statistics.json counts correct verdicts per order; with no unreadable
    # verdict in a subset, 2 * sum(P(gold)) equals correct_False + correct_True.
    assert DATA_DIR is not None
    data = converted("llmbar")
    rows = {row["id"]: row for row in data.replay}
    checked = 0
    for stats_path in sorted((DATA_DIR / "llmbar").rglob("evaluators/*/*/statistics.json")):
        subset = subset_name(stats_path.parents[3] / "dataset.json")
        judge = f"{stats_path.parent.parent.name}/{stats_path.parent.name}"
        items = [r for key, r in rows.items() if key.startswith(f"{subset}/")]
        if any(key.startswith(f"{subset}/") for key in data.unparseable[judge]):
            continue
        stats = json.loads(stats_path.read_text())
        correct = sum(int(stats[f"correct_{o}"].split(" / ")[0]) for o in ("False", "True"))
        expected = sum(2 * r["judges"][judge]["probs"][r["human"][0]] for r in items)
        assert round(expected) == correct, (subset, judge)
        checked += 1
    assert checked > 250


@needs_data
def test_xstest_matches_the_manifest() -> None:
    data = converted("xstest")
    assert len(data.sessions) == 2250
    assert Counter(s.metadata["model"] for s in data.sessions) == Counter(
        {m: 450 for m in ("gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct")}
    )
    assert data.annotators_per_item() == Counter({3: 2250})
    assert Counter((x.annotator, x.source) for x in data.labels) == Counter(
        {
            ("annotation_1", "sme"): 2250,
            ("annotation_2", "sme"): 2250,
            ("final", "adjudication"): 2250,
        }
    )
    assert data.criteria[0].safety
    assert data.judges == ["gpt4", "strmatch"]
    assert {j: len(ids) for j, ids in data.unparseable.items()} == {"gpt4": 11, "strmatch": 0}
    assert {s.metadata["prompt_label"] for s in data.sessions} == {"safe", "unsafe"}
    assert [m.role for m in data.sessions[0].messages] == ["user", "assistant"]
    finals = {x.session.external_id: x.value for x in data.labels if x.annotator == "final"}
    assert all(row["human"] == [finals[row["id"]]] for row in data.replay)


@needs_data
def test_qags_matches_the_manifest() -> None:
    data = converted("qags")
    assert len(data.sessions) == 953
    assert Counter(s.metadata["subset"] for s in data.sessions) == Counter(
        {"cnndm": 714, "xsum": 239}
    )
    assert data.annotators_per_item() == Counter({3: 953})
    assert len(data.labels) == 2859
    assert all(re.fullmatch(r"(cnndm|xsum)_worker_\d+", x.annotator) for x in data.labels)
    assert data.replay == [] and data.judges == []


@needs_data
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_labels_and_replay_rows_are_well_formed(name: str) -> None:
    data = converted(name)
    criteria = {c.name: c for c in data.criteria}
    ids = [s.external_id for s in data.sessions]
    assert len(set(ids)) == len(ids)
    assert {s.source for s in data.sessions} == {data.source}
    for label in data.labels:
        assert label.value in criteria[label.criterion].labels
        assert label.session.source == data.source
    assert {x.session.external_id for x in data.labels} == set(ids)
    (criterion,) = data.criteria
    assert criterion.description and set(criterion.anchors) == set(criterion.labels)
    if criterion.kind == "pairwise":
        assert all(len(s.metadata["candidates"]) == 2 for s in data.sessions)

    assert [row["id"] for row in data.replay] == (ids if data.judges else [])
    for row in data.replay:
        assert set(row) == {"id", "human", "judges"}
        assert row["human"] and set(row["human"]) <= set(criterion.labels)
        assert set(row["judges"]) <= set(data.judges)
        for verdict in row["judges"].values():
            check_verdict(verdict, criterion.labels)
    json.dumps(data.replay)  # JSON as it is written


def check_verdict(verdict: dict[str, Any], labels: list[str]) -> None:
    if "probs" in verdict:
        assert set(verdict) == {"probs"}
        assert set(verdict["probs"]) == set(labels)
        assert abs(sum(verdict["probs"].values()) - 1) < 1e-9
    else:
        assert set(verdict) == {"label", "confidence"}
        assert verdict["label"] in labels and 0 <= verdict["confidence"] <= 1


@needs_data
def test_a_subset_folder_keeps_the_same_ids() -> None:
    assert DATA_DIR is not None
    natural = FORMATS["llmbar"](DATA_DIR / "llmbar" / "LLMBar" / "Natural")
    whole = converted("llmbar")
    assert [s.external_id for s in natural.sessions] == [
        s.external_id for s in whole.sessions[:100]
    ]
    assert natural.replay == whole.replay[:100]


@needs_data
def test_limit_keeps_labels_replay_and_counts_consistent() -> None:
    small = converted("pandalm").limited(120)
    kept = {s.external_id for s in small.sessions}
    assert len(kept) == 120 and len(small.labels) == 360 and len(small.replay) == 120
    assert set(small.unparseable["gpt-3.5-turbo"]) <= kept


# --------------------------------------------------------------------------- store and CLI


def count(engine: Engine, table: type) -> int:
    with db_session(engine) as db:
        return int(db.exec(select(func.count()).select_from(table)).one())


@needs_data
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_import_through_the_store_is_idempotent(engine: Engine, name: str) -> None:
    data = converted(name).limited(30)
    first = store_converted(engine, data, actor="test", chunk=25)
    assert (first.sessions_created, first.labels_created) == (30, len(data.labels))
    second = store_converted(engine, data, actor="test", chunk=25)
    assert (second.sessions_created, second.labels_created, second.criteria_created) == (0, 0, 0)
    assert second.labels_existing == len(data.labels)
    assert count(engine, Session) == 30
    assert count(engine, HumanLabel) == len(data.labels)
    assert count(engine, Criterion) == 1


def run_cli(database_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "JUDGELOOP_DATABASE_URL": database_url,
        DATA_DIR_ENV: str(DATA_DIR),
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [sys.executable, "-m", "judgeloop", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"judgeloop {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


@needs_data
def test_cli_imports_a_dataset_and_writes_its_replay(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'judgeloop.db'}"
    run_cli(url, "db", "upgrade")
    replay = tmp_path / "replay" / "pandalm.jsonl"
    args = ("import", "dataset", "--format", "pandalm", "--limit", "50")
    result = run_cli(url, *args, "--replay-out", str(replay))
    assert "pandalm: 50 items, 150 labels (annotators per item: 3 (50 items))" in result.stdout
    assert "stored: 50 sessions new, 0 already stored; 150 labels new" in result.stdout
    assert "gpt-3.5-turbo:" in result.stdout and "unparseable" in result.stdout
    rows = [json.loads(line) for line in replay.read_text().splitlines()]
    assert len(rows) == 50 and set(rows[0]["judges"]) == {"gpt-3.5-turbo", "pandalm-7b"}

    again = run_cli(url, *args)
    assert "0 sessions new, 50 already stored; 0 labels new, 150 already stored" in again.stdout

    assert DATA_DIR is not None
    llmbar = run_cli(
        url, "import", "dataset", "-f", "llmbar", str(DATA_DIR / "llmbar"), "--limit", "50"
    )
    assert "llmbar: 50 items, 50 labels" in llmbar.stdout
    assert "65 judges" in llmbar.stdout


@needs_data
def test_cli_refuses_unknown_formats_and_names_bad_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'judgeloop.db'}"
    unknown = run_cli(url, "import", "dataset", "--format", "nope", "--skip-store", check=False)
    assert unknown.returncode == 1 and "known: pandalm, llmbar, xstest, qags" in unknown.stderr
    bad = tmp_path / "mturk_bad.jsonl"
    bad.write_text('{"article": "A.", "summary_sentences": "x"}\n')
    result = run_cli(url, "import", "dataset", "-f", "qags", str(bad), "--skip-store", check=False)
    assert result.returncode == 1
    assert f"{bad}: line 1: summary_sentences must be a list" in result.stderr
