"""LLMBar: instruction-following pairs with one gold label, and many recorded evaluators.

Files (princeton-nlp/LLMBar ``Dataset/``): ``<subset>/dataset.json`` for the subsets
``LLMBar/Natural``, ``LLMBar/Adversarial/{Neighbor,GPTInst,GPTOut,Manual}`` and
``Processed/{MT-Bench,LLMEval^2,FairEval}``: records ``input``, ``output_1``, ``output_2``,
``label`` (1 or 2). Beside each: ``evaluators/<model>/<strategy>/result.json``, the same
records plus ``results``: for strategies that generate metrics or a reference first, the
generated texts, then one object ``{"swap = False": {"winner": ...}, "swap = True": {...}}``
(``Swap`` strategies add a second such object, the synthesis round after a conflict; the last
one is the strategy's verdict). ``winner`` is already in the original order ("1" = output_1),
so it matches the recorded ``statistics.json`` accuracies.

Mappings:

- session ``llmbar`` / ``<subset>/<index>`` (e.g. ``LLMBar/Natural/0``); the user turn is the
  input; ``metadata["candidates"]`` holds the outputs; one label by annotator ``gold``;
- judges ``<model>/<strategy>`` (e.g. ``GPT-4/Vanilla_NoRules``), as ``probs`` over "1"/"2"
  from the two orders: both agree -> 1.0, a flip -> 0.5/0.5; an unparseable order (``winner``
  missing or not 1/2, e.g. "neither is better") spreads its half evenly (0.75/0.25 beside a
  readable order) and is counted; with both orders unparseable the judge is left out of the
  item's row. Not every judge ran on every subset (``Processed/*`` has two strategies per
  model, ``Rating*`` only LLMBar), so rows carry different judge sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from judgeloop.models import CriterionCreate
from judgeloop.sessions.public.base import (
    Converted,
    DatasetError,
    field_of,
    load_json_list,
    make_label,
    make_session,
    order_votes_to_probs,
    pairwise_candidates,
    text_of,
)

SOURCE = "llmbar"
SUBSET_ROOTS = ("LLMBar", "Processed")
ORDERS = ("swap = False", "swap = True")
LABELS = ["1", "2"]

CRITERION = CriterionCreate(
    name="llmbar_preference",
    kind="pairwise",
    labels=LABELS,
    description=(
        "Which of the two outputs follows the instruction better? LLMBar puts first whether an "
        "output honestly and precisely executes the instruction (doing neither more nor less "
        "than asked), and only then helpfulness, accuracy, level of detail and harmlessness."
    ),
    anchors={
        "1": "output 1 follows the instruction better",
        "2": "output 2 follows the instruction better",
    },
)


def subset_name(dataset_file: Path) -> str:
    """``LLMBar/Natural`` for ``.../LLMBar/Natural/dataset.json``: stable whatever path is given."""
    parts = dataset_file.resolve().parent.parts
    roots = [i for i, part in enumerate(parts) if part in SUBSET_ROOTS]
    if roots:
        return "/".join(parts[roots[-1] :])
    return parts[-1]


def dataset_files(path: Path) -> list[Path]:
    """The ``dataset.json`` files under ``path`` (or ``path`` itself), in subset order."""
    if path.is_file():
        return [path]
    found = [p for p in path.rglob("dataset.json") if "evaluators" not in p.parts]
    if not found:
        raise DatasetError(path, "", "no dataset.json under this folder")
    return sorted(found, key=_subset_order)


def _subset_order(dataset_file: Path) -> tuple[int, str]:
    # The paper's order: LLMBar Natural, then Adversarial, then the processed benchmarks.
    subset = subset_name(dataset_file)
    rank = 0 if subset.startswith("LLMBar/Natural") else 1 if subset.startswith("LLMBar/") else 2
    return rank, subset


def parse_winner(value: Any) -> str | None:
    """A recorded winner, "1" or "2"; None when missing or anything else."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if text in LABELS else None


def final_orders(record: Any, path: Path, where: str) -> list[str | None]:
    """The winners of the strategy's last verdict, one per presentation order."""
    results = field_of(record, "results", path, where)
    if not isinstance(results, list):
        raise DatasetError(path, where, "results must be a list")
    rounds = [r for r in results if isinstance(r, dict) and all(o in r for o in ORDERS)]
    if not rounds:
        raise DatasetError(path, where, f"results hold no object with keys {list(ORDERS)}")
    last = rounds[-1]
    return [
        parse_winner(last[order].get("winner")) if isinstance(last[order], dict) else None
        for order in ORDERS
    ]


def _judge_results(
    subset_dir: Path, items: list[dict[str, Any]]
) -> list[tuple[str, Path, list[Any]]]:
    judges: list[tuple[str, Path, list[Any]]] = []
    for result_path in sorted((subset_dir / "evaluators").glob("*/*/result.json")):
        judge = f"{result_path.parent.parent.name}/{result_path.parent.name}"
        records = load_json_list(result_path)
        if len(records) != len(items):
            raise DatasetError(result_path, "", f"{len(records)} records, dataset has {len(items)}")
        for index, (record, item) in enumerate(zip(records, items, strict=True)):
            for key in ("input", "output_1", "output_2"):
                if field_of(record, key, result_path, f"record {index}") != item[key]:
                    raise DatasetError(
                        result_path, f"record {index}", f"{key} differs from dataset.json"
                    )
        judges.append((judge, result_path, records))
    return judges


def convert(path: Path) -> Converted:
    """Convert the LLMBar folder, one subset folder, or one ``dataset.json``."""
    converted = Converted(source=SOURCE, criteria=[CRITERION])
    for dataset_file in dataset_files(path):
        subset = subset_name(dataset_file)
        items = load_json_list(dataset_file)
        checked: list[dict[str, Any]] = []
        for index, record in enumerate(items):
            where = f"record {index}"
            checked.append(
                {
                    key: text_of(record, key, dataset_file, where)
                    for key in ("input", "output_1", "output_2")
                }
            )
            label = parse_winner(field_of(record, "label", dataset_file, where))
            if label is None:
                raise DatasetError(dataset_file, where, f"label is {record['label']!r}, not 1/2")
            checked[-1]["label"] = label
        judges = _judge_results(dataset_file.parent, checked)
        for judge, _path, _records in judges:
            converted.add_judge(judge)

        for index, item in enumerate(checked):
            where = f"record {index}"
            session = make_session(
                dataset_file,
                where,
                source=SOURCE,
                external_id=f"{subset}/{index}",
                messages=[{"role": "user", "content": item["input"]}],
                metadata={
                    "dataset": "llmbar",
                    "subset": subset,
                    "candidates": pairwise_candidates(item["output_1"], item["output_2"]),
                },
            )
            converted.sessions.append(session)
            converted.labels.append(make_label(session, CRITERION, item["label"], "gold"))
            verdicts: dict[str, Any] = {}
            for judge, result_path, records in judges:
                votes = final_orders(records[index], result_path, where)
                for vote in votes:
                    if vote is None:
                        converted.record_unparseable(judge, session.external_id)
                probs = order_votes_to_probs(votes, LABELS)
                if probs is None:
                    converted.record_omitted(judge, session.external_id)
                else:
                    verdicts[judge] = {"probs": probs}
            converted.replay.append(
                {"id": session.external_id, "human": [item["label"]], "judges": verdicts}
            )
    return converted
