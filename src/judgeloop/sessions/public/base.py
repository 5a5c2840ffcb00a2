"""What every public-dataset converter shares: the bundle it returns, errors, readers, paths."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from judgeloop.models import CriterionCreate, HumanLabelCreate, LabelSource, SessionCreate
from judgeloop.sessions.jsonl import describe_validation_error

DATA_DIR_ENV = "JUDGELOOP_PUBLIC_DATA_DIR"
DEFAULT_DATA_DIR = Path("..") / "shared" / "datasets"
# src/judgeloop/sessions/public/base.py -> the repository root (editable install).
REPO_ROOT = Path(__file__).resolve().parents[4]

ReplayRow = dict[str, Any]


class DatasetError(Exception):
    """A dataset file is not what its converter expects; names the file and the record."""

    def __init__(self, path: Path, where: str, reason: str):
        self.path = path
        self.where = where
        self.reason = reason
        super().__init__(f"{path}: {where}: {reason}" if where else f"{path}: {reason}")


@dataclass
class Converted:
    """One dataset as judgeloop records: criteria, sessions, human labels and a replay file.

    ``unparseable`` and ``omitted`` map a replay judge to the item ids concerned, one entry
    per unparseable verdict (an item judged in both orders can appear twice) and one per
    replay row that leaves the judge out because none of its verdicts could be read.
    """

    source: str
    criteria: list[CriterionCreate]
    sessions: list[SessionCreate] = field(default_factory=list)
    labels: list[HumanLabelCreate] = field(default_factory=list)
    replay: list[ReplayRow] = field(default_factory=list)
    judges: list[str] = field(default_factory=list)
    unparseable: dict[str, list[str]] = field(default_factory=dict)
    omitted: dict[str, list[str]] = field(default_factory=dict)

    def limited(self, limit: int | None) -> Converted:
        """The first ``limit`` sessions with their labels, replay rows and verdict counts."""
        if limit is None or limit >= len(self.sessions):
            return self
        sessions = self.sessions[: max(limit, 0)]
        kept = {s.external_id for s in sessions}
        return Converted(
            source=self.source,
            criteria=self.criteria,
            sessions=sessions,
            labels=[x for x in self.labels if x.session.external_id in kept],
            replay=[row for row in self.replay if row["id"] in kept],
            judges=self.judges,
            unparseable={j: [i for i in ids if i in kept] for j, ids in self.unparseable.items()},
            omitted={j: [i for i in ids if i in kept] for j, ids in self.omitted.items()},
        )

    def annotators_per_item(self) -> Counter[int]:
        """How many items have how many distinct annotators (items without labels count 0)."""
        annotators: dict[str, set[str]] = {s.external_id: set() for s in self.sessions}
        for label in self.labels:
            annotators.setdefault(label.session.external_id, set()).add(label.annotator)
        return Counter(len(names) for names in annotators.values())

    def record_unparseable(self, judge: str, item_id: str) -> None:
        """Count one verdict of ``judge`` on ``item_id`` that could not be read."""
        self.unparseable.setdefault(judge, []).append(item_id)

    def record_omitted(self, judge: str, item_id: str) -> None:
        """Note that the replay row of ``item_id`` leaves ``judge`` out."""
        self.omitted.setdefault(judge, []).append(item_id)

    def add_judge(self, judge: str) -> None:
        """Register a replay judge name (kept in first-seen order)."""
        if judge not in self.judges:
            self.judges.append(judge)
            self.unparseable.setdefault(judge, [])
            self.omitted.setdefault(judge, [])


@dataclass(frozen=True)
class Converter:
    """A registered dataset format: its default folder and the function that converts it."""

    name: str
    folder: str
    description: str
    convert: Callable[[Path], Converted]

    def default_path(self) -> Path:
        """The dataset's folder under the public data directory."""
        return data_dir() / self.folder

    def __call__(self, path: Path | None = None) -> Converted:
        """Convert ``path`` (default: :meth:`default_path`)."""
        target = path if path is not None else self.default_path()
        if not target.exists():
            raise DatasetError(target, "", f"no such file or directory (format {self.name})")
        return self.convert(target)


def find_data_dir() -> Path | None:
    """Where the public datasets are, or None.

    ``$JUDGELOOP_PUBLIC_DATA_DIR`` when set (returned even when missing, so that the error
    names it); else ``../shared/datasets`` relative to the current directory, then relative to
    the repository root.
    """
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured)
    for base in (Path.cwd(), REPO_ROOT):
        candidate = base / DEFAULT_DATA_DIR
        if candidate.is_dir():
            return candidate.resolve()
    return None


def data_dir() -> Path:
    """The public data directory; raises :class:`DatasetError` when it cannot be found."""
    found = find_data_dir()
    if found is None:
        raise DatasetError(
            DEFAULT_DATA_DIR,
            "",
            f"public data directory not found; set {DATA_DIR_ENV} or pass the dataset path",
        )
    if not found.is_dir():
        raise DatasetError(found, "", f"{DATA_DIR_ENV} points at no directory")
    return found


# --------------------------------------------------------------------------- readers


def load_json(path: Path) -> Any:
    """Parse a JSON file; errors name the file and the line."""
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise DatasetError(path, f"line {error.lineno}", f"invalid JSON: {error.msg}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(path, "", str(error)) from error


def load_json_list(path: Path) -> list[Any]:
    """Parse a JSON file that must hold a list of records."""
    data = load_json(path)
    if not isinstance(data, list):
        raise DatasetError(path, "", f"expected a JSON list of records, got {type(data).__name__}")
    return data


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object) for each non-blank line."""
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as error:
                    raise DatasetError(
                        path, f"line {number}", f"invalid JSON: {error.msg} (col {error.colno})"
                    ) from error
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(path, "", str(error)) from error


def read_csv(path: Path, required: tuple[str, ...]) -> list[tuple[str, dict[str, str]]]:
    """Read a CSV file with a header; return (where, row) pairs, ``where`` naming the line."""
    rows: list[tuple[str, dict[str, str]]] = []
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [name for name in required if name not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(path, "line 1", f"missing column(s) {', '.join(missing)}")
            start = reader.line_num + 1
            for row in reader:
                rows.append((f"line {start}", row))
                start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(path, "", str(error)) from error
    return rows


def field_of(record: Any, key: str, path: Path, where: str) -> Any:
    """``record[key]``, or a :class:`DatasetError` naming what is missing."""
    if not isinstance(record, dict):
        raise DatasetError(path, where, f"expected an object, got {type(record).__name__}")
    if key not in record:
        raise DatasetError(path, where, f"missing key {key!r}")
    return record[key]


def text_of(record: Any, key: str, path: Path, where: str) -> str:
    """A text field; JSON booleans and numbers (``True`` read as a bool) become their text."""
    value = field_of(record, key, path, where)
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    if value is None:
        return ""
    raise DatasetError(path, where, f"{key} must be text, got {type(value).__name__}")


# --------------------------------------------------------------------------- builders


def make_session(
    path: Path,
    where: str,
    *,
    source: str,
    external_id: str,
    messages: list[dict[str, Any]],
    metadata: dict[str, Any],
) -> SessionCreate:
    """Build a session; a validation error names the file and the record."""
    try:
        return SessionCreate(
            source=source, external_id=external_id, messages=messages, metadata=metadata
        )
    except ValidationError as error:
        raise DatasetError(path, where, describe_validation_error(error)) from error


def make_label(
    session: SessionCreate,
    criterion: CriterionCreate,
    value: str,
    annotator: str,
    *,
    source: LabelSource = "sme",
    rationale: str = "",
) -> HumanLabelCreate:
    """A human label for ``session``; ``value`` must already be one of the criterion's labels."""
    if value not in criterion.labels:
        raise ValueError(f"{value!r} is not a label of {criterion.name}")
    return HumanLabelCreate(
        session={"source": session.source, "external_id": session.external_id},
        criterion=criterion.name,
        value=value,
        annotator=annotator,
        rationale=rationale,
        source=source,
    )


def pairwise_candidates(first: str, second: str) -> list[dict[str, str]]:
    """The two candidate responses of a pairwise session, as ``metadata["candidates"]``."""
    return [{"id": "1", "content": first}, {"id": "2", "content": second}]


def label_verdict(label: str) -> dict[str, Any]:
    """A replay verdict from a judge that recorded a label and no confidence."""
    return {"label": label, "confidence": 1.0}


def order_votes_to_probs(votes: list[str | None], labels: list[str]) -> dict[str, float] | None:
    """Probabilities from one judge's verdicts in several presentation orders.

    Every order weighs the same; an unreadable verdict spreads its weight evenly over the
    labels. Agreeing orders give 1.0, a position flip 0.5/0.5, one agreeing order beside an
    unreadable one 0.75/0.25. None when no verdict was readable.
    """
    if not votes or all(vote is None for vote in votes):
        return None
    weight = 1.0 / len(votes)
    probs = dict.fromkeys(labels, 0.0)
    for vote in votes:
        if vote is None:
            for label in labels:
                probs[label] += weight / len(labels)
        else:
            probs[vote] += weight
    return {label: round(p, 6) for label, p in probs.items()}
