"""QAGS crowd annotations: is each summary sentence supported by its article? 3 workers each.

Files (W4ngatang/qags ``data/``): ``mturk_cnndm.jsonl`` and ``mturk_xsum.jsonl``, one article a
line: ``article`` and ``summary_sentences``, each with ``sentence`` and ``responses``
(``worker_id``, ``response`` yes/no).

Mappings:

- session ``qags`` / ``<subset>/<article index>/<sentence index>`` (e.g. ``cnndm/0/2``), subset
  from the file name; the article is the user turn and the summary sentence the assistant turn;
  ``metadata["summary"]`` holds the whole summary for context;
- labels ``yes``/``no`` by annotator ``<subset>_worker_<worker_id>``: worker ids are numbered
  per file, so the subset keeps the two files' workers apart;
- no judge outputs are recorded, so the replay is empty.
"""

from __future__ import annotations

from pathlib import Path

from judgeloop.models import CriterionCreate
from judgeloop.sessions.public.base import (
    Converted,
    DatasetError,
    field_of,
    make_label,
    make_session,
    read_jsonl,
    text_of,
)

SOURCE = "qags"
LABELS = ["yes", "no"]

CRITERION = CriterionCreate(
    name="qags_supported",
    kind="binary",
    labels=LABELS,
    description=(
        "Is this summary sentence supported by the article? QAGS annotators judged each sentence "
        "of a generated summary for factual consistency with its source article."
    ),
    anchors={
        "yes": "the article supports what the sentence states",
        "no": "the sentence contradicts the article or states what it does not support",
    },
)


def jsonl_files(path: Path) -> list[Path]:
    """``mturk_*.jsonl`` under ``path``, or ``path`` itself."""
    if path.is_file():
        return [path]
    files = sorted(path.glob("mturk_*.jsonl"))
    if not files:
        raise DatasetError(path, "", "no mturk_*.jsonl files")
    return files


def convert(path: Path) -> Converted:
    """Convert the QAGS folder, or one of its ``mturk_<subset>.jsonl`` files."""
    converted = Converted(source=SOURCE, criteria=[CRITERION])
    for file in jsonl_files(path):
        subset = file.stem.removeprefix("mturk_")
        for article_index, (line, record) in enumerate(read_jsonl(file)):
            where = f"line {line}"
            article = text_of(record, "article", file, where)
            sentences = field_of(record, "summary_sentences", file, where)
            if not isinstance(sentences, list):
                raise DatasetError(file, where, "summary_sentences must be a list")
            summary = " ".join(text_of(s, "sentence", file, where) for s in sentences)
            for sentence_index, entry in enumerate(sentences):
                at = f"{where}: summary_sentences.{sentence_index}"
                session = make_session(
                    file,
                    at,
                    source=SOURCE,
                    external_id=f"{subset}/{article_index}/{sentence_index}",
                    messages=[
                        {"role": "user", "content": article},
                        {"role": "assistant", "content": text_of(entry, "sentence", file, at)},
                    ],
                    metadata={
                        "dataset": "qags",
                        "subset": subset,
                        "sentence_index": sentence_index,
                        "summary": summary,
                    },
                )
                converted.sessions.append(session)
                responses = field_of(entry, "responses", file, at)
                if not isinstance(responses, list) or not responses:
                    raise DatasetError(file, at, "responses must be a non-empty list")
                for number, response in enumerate(responses):
                    worker = field_of(response, "worker_id", file, f"{at}.responses.{number}")
                    value = str(field_of(response, "response", file, at)).strip().lower()
                    if value not in LABELS:
                        raise DatasetError(
                            file, f"{at}.responses.{number}", f"response {value!r} is not yes/no"
                        )
                    converted.labels.append(
                        make_label(session, CRITERION, value, f"{subset}_worker_{worker}")
                    )
    return converted
