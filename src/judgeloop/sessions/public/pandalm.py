"""PandaLM test set: 999 pairwise comparisons, three annotators each, two recorded judges.

Files (WeOpenML/PandaLM ``data/``): ``testset-v1.json`` with ``instruction``, ``input``,
``response1``, ``response2`` and ``annotator1..3``; ``gpt-3.5-turbo-testset-v1.json``
(``gpt_result``) and ``pandalm-7b-testset-v1.json`` (``pandalm_result``), same order, same
``idx``.

Mappings:

- labels: raw ``1`` -> ``"1"`` (response 1 better), ``2`` -> ``"2"``, ``0`` -> ``"tie"``;
- session ``pandalm`` / ``testset-v1/<idx>``; the user turn is the instruction, followed by a
  blank line and the input when there is one; ``metadata["candidates"]`` holds the responses.
  Some responses are stored as JSON booleans (the text "True"): they become that text;
- judges ``gpt-3.5-turbo`` and ``pandalm-7b``: ``"1"``/``"2"`` and ``"Tie"``/``0`` are read;
  anything else (GPT-3.5's ``"garbage"``) is unparseable: the judge is left out of that item's
  replay row and counted. Neither file records a confidence, so each verdict has confidence 1.0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from judgeloop.models import CriterionCreate
from judgeloop.sessions.public.base import (
    Converted,
    DatasetError,
    field_of,
    label_verdict,
    load_json_list,
    make_label,
    make_session,
    pairwise_candidates,
    text_of,
)

SOURCE = "pandalm"
TESTSET = "testset-v1.json"
JUDGE_FILES = {
    "gpt-3.5-turbo": ("gpt-3.5-turbo-testset-v1.json", "gpt_result"),
    "pandalm-7b": ("pandalm-7b-testset-v1.json", "pandalm_result"),
}
ANNOTATORS = ("annotator1", "annotator2", "annotator3")

CRITERION = CriterionCreate(
    name="pandalm_preference",
    kind="pairwise",
    labels=["1", "2", "tie"],
    description=(
        "Which of the two responses better completes the instruction for its input? PandaLM's "
        "annotators weighed correctness together with conciseness, clarity, adherence to the "
        "instruction, comprehensiveness and formality, and called a tie when neither was better."
    ),
    anchors={
        "1": "response 1 is better",
        "2": "response 2 is better",
        "tie": "neither response is better (raw label 0)",
    },
)

_VERDICTS = {"1": "1", "2": "2", "0": "tie", "tie": "tie"}


def parse_verdict(value: Any) -> str | None:
    """Read a recorded PandaLM-style verdict: 1, 2, 0 or Tie (any case); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip().lower().rstrip(".")
    text = text.removeprefix("response ").strip()
    return _VERDICTS.get(text)


def _human_label(record: Any, key: str, path: Path, where: str) -> str:
    raw = field_of(record, key, path, where)
    label = None if isinstance(raw, bool) else _VERDICTS.get(str(raw).strip().lower())
    if label is None:
        raise DatasetError(path, where, f"{key} is {raw!r}; expected 0 (tie), 1 or 2")
    return label


def convert(path: Path) -> Converted:
    """Convert the PandaLM folder (or its ``testset-v1.json``, judge files beside it)."""
    folder = path.parent if path.is_file() else path
    testset_path = path if path.is_file() else folder / TESTSET
    records = load_json_list(testset_path)
    converted = Converted(source=SOURCE, criteria=[CRITERION])

    judge_records: dict[str, tuple[Path, str, list[Any]]] = {}
    for judge, (file_name, key) in JUDGE_FILES.items():
        judge_path = folder / file_name
        if not judge_path.exists():
            continue
        rows = load_json_list(judge_path)
        if len(rows) != len(records):
            raise DatasetError(
                judge_path, "", f"{len(rows)} records, but {testset_path.name} has {len(records)}"
            )
        judge_records[judge] = (judge_path, key, rows)
        converted.add_judge(judge)

    for index, record in enumerate(records):
        where = f"record {index}"
        idx = field_of(record, "idx", testset_path, where)
        instruction = text_of(record, "instruction", testset_path, where)
        task_input = text_of(record, "input", testset_path, where)
        prompt = f"{instruction}\n\n{task_input}" if task_input.strip() else instruction
        session = make_session(
            testset_path,
            where,
            source=SOURCE,
            external_id=f"testset-v1/{idx}",
            messages=[{"role": "user", "content": prompt}],
            metadata={
                "dataset": "pandalm",
                "instruction": instruction,
                "input": task_input,
                "motivation_app": record.get("motivation_app"),
                "cmp_key": record.get("cmp_key"),
                "candidates": pairwise_candidates(
                    text_of(record, "response1", testset_path, where),
                    text_of(record, "response2", testset_path, where),
                ),
            },
        )
        converted.sessions.append(session)
        human = [_human_label(record, key, testset_path, where) for key in ANNOTATORS]
        for annotator, value in zip(ANNOTATORS, human, strict=True):
            converted.labels.append(make_label(session, CRITERION, value, annotator))

        judges: dict[str, Any] = {}
        for judge, (judge_path, key, rows) in judge_records.items():
            row = rows[index]
            if field_of(row, "idx", judge_path, where) != idx:
                raise DatasetError(judge_path, where, f"idx {row['idx']!r}, expected {idx!r}")
            verdict = parse_verdict(field_of(row, key, judge_path, where))
            if verdict is None:
                converted.record_unparseable(judge, session.external_id)
                converted.record_omitted(judge, session.external_id)
                continue
            judges[judge] = label_verdict(verdict)
        converted.replay.append({"id": session.external_id, "human": human, "judges": judges})
    return converted
