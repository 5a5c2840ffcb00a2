"""Tables of the store and the schemas the API, CLI and files exchange.

Families per entity follow one pattern: ``XCreate`` (what arrives), ``X`` (the table),
``XPublic`` (what is returned), ``XsPublic`` (a page of them with a count).
"""

from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel, col

from judgeloop.types import JSONType, UTCDateTime, utc_now

NonEmptyStr = Annotated[str, Field(min_length=1, max_length=512)]
Role = Literal["system", "user", "assistant", "tool"]
CriterionKind = Literal["binary", "ordinal", "categorical", "pairwise"]
LabelSource = Literal["sme", "review", "audit", "adjudication"]
ApiRole = Literal["pipeline", "reviewer", "engineer", "admin"]
RiskTier = Literal["green", "yellow", "red"]
API_ROLES: tuple[ApiRole, ...] = ("pipeline", "reviewer", "engineer", "admin")


def _created_at() -> Any:
    return SQLField(default_factory=utc_now, sa_type=UTCDateTime, nullable=False, index=True)


# --------------------------------------------------------------------------- criteria


class CriterionCreate(BaseModel):
    """What is judged, with its label schema."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_]*$")
    kind: CriterionKind
    labels: list[str] = Field(min_length=2, description="Allowed label values, in order.")
    description: str = ""
    anchors: dict[str, str] = Field(
        default_factory=dict, description="What each label means, label -> description."
    )
    safety: bool = Field(default=False, description="Safety-relevant: escalations never capped.")
    risk_tier: RiskTier = "green"

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_strings(cls, value: object) -> object:
        if isinstance(value, list):
            return [str(item) if isinstance(item, int) else item for item in value]
        return value

    @model_validator(mode="after")
    def _check_labels(self) -> "CriterionCreate":
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be distinct, got {self.labels}")
        if self.kind == "binary" and len(self.labels) != 2:
            raise ValueError(f"a binary criterion has exactly 2 labels, got {self.labels}")
        unknown = sorted(set(self.anchors) - set(self.labels))
        if unknown:
            raise ValueError(f"anchors name labels that do not exist: {unknown}")
        # Anchors follow the label order, whatever order a file or a JSONB column gave them in.
        self.anchors = {
            label: self.anchors[label] for label in self.labels if label in self.anchors
        }
        return self


class Criterion(SQLModel, table=True):
    """A criterion as stored."""

    __tablename__ = "criteria"

    id: int | None = SQLField(default=None, primary_key=True)
    name: str = SQLField(unique=True, index=True, max_length=100)
    kind: str = SQLField(max_length=20)
    labels: list[str] = SQLField(sa_type=JSONType)
    description: str = SQLField(default="", sa_type=sa.Text)
    anchors: dict[str, str] = SQLField(default_factory=dict, sa_type=JSONType)
    safety: bool = False
    risk_tier: str = SQLField(default="green", max_length=10)
    created_at: datetime = _created_at()


class CriterionPublic(CriterionCreate):
    """A criterion as returned."""

    id: int
    created_at: datetime


class CriteriaPublic(BaseModel):
    """All criteria."""

    data: list[CriterionPublic]
    count: int


# --------------------------------------------------------------------------- sessions


class ToolCall(BaseModel):
    """One tool call an assistant message made."""

    model_config = ConfigDict(extra="forbid")

    id: NonEmptyStr = Field(description="Id that the tool result message refers to.")
    name: NonEmptyStr = Field(description="Tool name, e.g. issue_refund.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Arguments as an object.")


class Message(BaseModel):
    """One message of a session, in the chat-completions shape."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str | dict[str, Any] | list[Any] | None = Field(
        default=None,
        description="Text of the message; a tool message may carry any JSON value as its result.",
    )
    tool_calls: list[ToolCall] = Field(
        default_factory=list, description="Tool calls of an assistant message."
    )
    tool_call_id: str | None = Field(
        default=None, description="For role tool: the id of the tool call this answers."
    )
    name: str | None = Field(default=None, description="For role tool: the tool's name.")

    @model_validator(mode="after")
    def _check_role_fields(self) -> "Message":
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"only assistant messages may have tool_calls, not role {self.role!r}")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        if self.role != "tool" and self.tool_call_id is not None:
            raise ValueError("tool_call_id is only allowed on tool messages")
        if self.role != "tool" and not isinstance(self.content, str | None):
            raise ValueError(f"content of a {self.role} message must be a string or null")
        if self.role in ("system", "user") and not self.content:
            raise ValueError(f"a {self.role} message needs non-empty content")
        if self.role == "assistant" and not self.content and not self.tool_calls:
            raise ValueError("an assistant message needs content or tool_calls")
        return self


class SessionCreate(BaseModel):
    """A session as an LLM application sends it, identified by (source, external_id)."""

    model_config = ConfigDict(extra="forbid")

    source: NonEmptyStr = Field(description="The application or pipeline that sent it.")
    external_id: NonEmptyStr = Field(description="The session's id within its source.")
    messages: list[Message] = Field(min_length=1, max_length=5000)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free-form context.")

    @model_validator(mode="after")
    def _check_tool_results_answer_calls(self) -> "SessionCreate":
        seen_call_ids: set[str] = set()
        for index, message in enumerate(self.messages):
            for call in message.tool_calls:
                if call.id in seen_call_ids:
                    raise ValueError(f"messages.{index}.tool_calls: duplicate id {call.id!r}")
                seen_call_ids.add(call.id)
            if message.role == "tool" and message.tool_call_id not in seen_call_ids:
                raise ValueError(
                    f"messages.{index}.tool_call_id {message.tool_call_id!r} answers no earlier "
                    "tool call"
                )
        return self


class Session(SQLModel, table=True):
    """A stored session; (source, external_id) is unique."""

    __tablename__ = "sessions"
    __table_args__ = (sa.UniqueConstraint("source", "external_id", name="uq_sessions_source_ext"),)

    id: int | None = SQLField(default=None, primary_key=True)
    source: str = SQLField(max_length=512)
    external_id: str = SQLField(max_length=512)
    messages: list[dict[str, Any]] = SQLField(sa_type=JSONType)
    session_metadata: dict[str, Any] = SQLField(default_factory=dict, sa_type=JSONType)
    content_hash: str = SQLField(index=True, max_length=64)
    pipeline_status: str | None = SQLField(
        default=None,
        max_length=20,
        index=True,
        description="pending until the worker has scored it with every active judge, then done; "
        "None for sessions imported only as labelled data.",
    )
    created_at: datetime = _created_at()


class SessionPublic(SessionCreate):
    """A session as returned."""

    model_config = ConfigDict(extra="ignore")

    id: int
    content_hash: str
    created_at: datetime


class DecisionPublic(BaseModel):
    """What the pipeline decided for one session and criterion, and why."""

    id: int
    session_id: int
    criterion: str
    judge_version_id: str | None
    outcome: str = Field(description="auto: the judge's label stands; escalate: a human reviews.")
    escalate: bool
    label: str | None
    confidence: float | None = Field(description="The judge's raw confidence.")
    calibrated_confidence: float | None = Field(
        description="P(the judge agrees with the humans), from the newest calibration."
    )
    reasons: list[str]
    priority: int
    queue_item_id: int | None
    created_at: datetime


class SessionAccepted(BaseModel):
    """The answer to posting one session: its id, and whether it was new."""

    id: int
    source: str
    external_id: str
    created: bool
    decisions: list[DecisionPublic] | None = Field(
        default=None, description="With ?wait=true: one decision per active judge."
    )


class JudgeRequest(BaseModel):
    """Score one session with one judge version: POST /v1/judge."""

    model_config = ConfigDict(extra="forbid")

    judge: NonEmptyStr = Field(
        description="A judge version id, or a judge name (its active, else newest, version)."
    )
    session: SessionCreate


class JudgeResponse(BaseModel):
    """A verdict, its confidence and whether a human should look."""

    session_id: int
    judge: str
    judge_version_id: str
    label: str | None
    confidence: float | None
    calibrated_confidence: float | None
    escalate: bool
    reasons: list[str]
    decision_id: int
    queue_item_id: int | None
    rationale: str
    error: str | None


class SessionsAccepted(BaseModel):
    """The answer to posting a batch."""

    data: list[SessionAccepted]
    count: int
    created: int


# --------------------------------------------------------------------------- human labels


class SessionRef(BaseModel):
    """Points at a stored session by its (source, external_id)."""

    model_config = ConfigDict(extra="forbid")

    source: NonEmptyStr
    external_id: NonEmptyStr


class HumanLabelCreate(BaseModel):
    """One person's label for (session, criterion)."""

    model_config = ConfigDict(extra="forbid")

    session: SessionRef
    criterion: NonEmptyStr = Field(description="Name of the criterion, e.g. resolved.")
    value: NonEmptyStr = Field(description="One of the criterion's labels.")
    annotator: NonEmptyStr = Field(description="Who labelled it.")
    rationale: str = Field(default="", max_length=20_000, description="Why this label.")
    correction: str | None = Field(
        default=None, max_length=20_000, description="A better answer the annotator suggests."
    )
    source: LabelSource = Field(default="sme", description="How the label came to be.")

    @field_validator("value", mode="before")
    @classmethod
    def _numbers_as_strings(cls, value: object) -> object:
        # Ordinal labels such as tone 1-5 arrive as JSON numbers; labels are stored as strings.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value


class HumanLabel(SQLModel, table=True):
    """An appended human label (never updated or deleted)."""

    __tablename__ = "human_labels"
    __table_args__ = (sa.Index("ix_human_labels_criterion_session", "criterion_id", "session_id"),)

    id: int | None = SQLField(default=None, primary_key=True)
    session_id: int = SQLField(foreign_key="sessions.id", index=True)
    criterion_id: int = SQLField(foreign_key="criteria.id")
    value: str = SQLField(max_length=512)
    annotator: str = SQLField(max_length=512, index=True)
    rationale: str = SQLField(default="", sa_type=sa.Text)
    correction: str | None = SQLField(default=None, sa_type=sa.Text)
    source: str = SQLField(default="sme", max_length=20)
    split: str | None = SQLField(default=None, max_length=20)
    label_key: str = SQLField(
        unique=True, max_length=64, description="Hash that makes re-imports idempotent."
    )
    created_at: datetime = _created_at()


class HumanLabelPublic(BaseModel):
    """A human label as returned."""

    id: int
    session_id: int
    criterion: str
    value: str
    annotator: str
    rationale: str
    correction: str | None
    source: str
    created_at: datetime
    created: bool = Field(default=True, description="False when this exact label existed.")


class HumanLabelsPublic(BaseModel):
    """The answer to posting labels."""

    data: list[HumanLabelPublic]
    count: int
    created: int


# --------------------------------------------------------------------------- judges


class JudgeVersion(SQLModel, table=True):
    """An immutable judge definition; its id is the hash of its normalized spec."""

    __tablename__ = "judge_versions"

    id: str = SQLField(primary_key=True, max_length=64)
    name: str = SQLField(index=True, max_length=200)
    criterion_id: int = SQLField(foreign_key="criteria.id", index=True)
    spec: dict[str, Any] = SQLField(sa_type=JSONType)
    active: bool = SQLField(default=False)
    created_at: datetime = _created_at()


class Judgment(SQLModel, table=True):
    """One judge version's verdict on one session, or the error that stopped it."""

    __tablename__ = "judgments"
    __table_args__ = (
        sa.UniqueConstraint("judge_version_id", "session_id", name="uq_judgments_version_session"),
        sa.Index("ix_judgments_criterion_created", "criterion_id", "created_at"),
    )

    id: int | None = SQLField(default=None, primary_key=True)
    session_id: int = SQLField(foreign_key="sessions.id", index=True)
    judge_version_id: str = SQLField(foreign_key="judge_versions.id", max_length=64)
    criterion_id: int = SQLField(foreign_key="criteria.id")
    label: str | None = SQLField(default=None, max_length=512)
    raw_confidence: float | None = None
    calibrated_confidence: float | None = None
    rationale: str = SQLField(default="", sa_type=sa.Text)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    error: str | None = SQLField(default=None, sa_type=sa.Text)
    detail: dict[str, Any] = SQLField(
        default_factory=dict,
        sa_type=JSONType,
        description="Label distribution, cascade tier, cache hit and other particulars.",
    )
    created_at: datetime = _created_at()


class JudgmentPublic(BaseModel):
    """A judgment as returned."""

    id: int
    session_id: int
    judge_version_id: str
    label: str | None
    raw_confidence: float | None
    calibrated_confidence: float | None
    rationale: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    error: str | None
    detail: dict[str, Any]
    created_at: datetime


Partition = Literal["derive", "calibration", "test"]
PARTITIONS: tuple[Partition, ...] = ("derive", "calibration", "test")


class SplitAssignment(SQLModel, table=True):
    """Which partition a session belongs to for one criterion; recorded once, never changed."""

    __tablename__ = "split_assignments"
    __table_args__ = (
        sa.UniqueConstraint("criterion_id", "session_id", name="uq_split_criterion_session"),
        sa.Index("ix_split_criterion_partition", "criterion_id", "partition"),
    )

    id: int | None = SQLField(default=None, primary_key=True)
    criterion_id: int = SQLField(foreign_key="criteria.id")
    session_id: int = SQLField(foreign_key="sessions.id")
    partition: str = SQLField(max_length=20)
    seed: int
    created_at: datetime = _created_at()


class Calibration(SQLModel, table=True):
    """A judge version measured on a label snapshot: calibrator, threshold and metrics."""

    __tablename__ = "calibrations"

    id: int | None = SQLField(default=None, primary_key=True)
    judge_version_id: str = SQLField(foreign_key="judge_versions.id", index=True, max_length=64)
    label_snapshot: str = SQLField(
        max_length=64, description="Hash of the labels it was fitted on."
    )
    method: str = SQLField(default="isotonic", max_length=40)
    alpha: float
    delta: float
    threshold: float | None = None
    coverage: float | None = None
    calibrator: dict[str, Any] = SQLField(default_factory=dict, sa_type=JSONType)
    metrics: dict[str, Any] = SQLField(default_factory=dict, sa_type=JSONType)
    created_at: datetime = _created_at()


class CalibrationPublic(BaseModel):
    """A calibration as returned."""

    id: int
    judge_version_id: str
    judge_name: str
    label_snapshot: str
    method: str
    alpha: float
    delta: float
    threshold: float | None
    coverage: float | None
    calibrator: dict[str, Any]
    metrics: dict[str, Any]
    created_at: datetime


class JudgeVersionPublic(BaseModel):
    """A registered judge version."""

    id: str
    name: str
    criterion: str
    backend: str
    model: str | None
    created_at: datetime


class JudgeVersionsPublic(BaseModel):
    """Registered judge versions, newest first."""

    data: list[JudgeVersionPublic]
    count: int


# --------------------------------------------------------------------------- escalation


class Decision(SQLModel, table=True):
    """The policy's outcome for (session, criterion), with every reason."""

    __tablename__ = "decisions"
    __table_args__ = (
        sa.Index("ix_decisions_session_criterion", "session_id", "criterion_id"),
        sa.Index("ix_decisions_outcome_created", "outcome", "created_at"),
        sa.UniqueConstraint("session_id", "judge_version_id", name="uq_decision_session_version"),
    )

    id: int | None = SQLField(default=None, primary_key=True)
    session_id: int = SQLField(foreign_key="sessions.id")
    criterion_id: int = SQLField(foreign_key="criteria.id")
    judge_version_id: str | None = SQLField(
        default=None,
        max_length=64,
        sa_column_args=[sa.ForeignKey("judge_versions.id", name="fk_decisions_judge_version")],
    )
    judgment_id: int | None = SQLField(default=None, foreign_key="judgments.id")
    outcome: str = SQLField(max_length=20, description="auto or escalate")
    label: str | None = SQLField(default=None, max_length=512)
    calibrated_confidence: float | None = None
    priority: int = SQLField(default=0, description="Queue priority when escalated.")
    reasons: list[str] = SQLField(default_factory=list, sa_type=JSONType)
    detail: dict[str, Any] = SQLField(
        default_factory=dict,
        sa_type=JSONType,
        sa_column_kwargs={"server_default": sa.text("'{}'")},
        description="What each reason measured (threshold, novelty score, matched rules...).",
    )
    created_at: datetime = _created_at()


class Gate(SQLModel, table=True):
    """An agent action waiting for approval by risk tier."""

    __tablename__ = "gates"
    __table_args__ = (sa.Index("ix_gates_status_created", "status", "created_at"),)

    id: int | None = SQLField(default=None, primary_key=True)
    action_name: str = SQLField(max_length=200)
    arguments: dict[str, Any] = SQLField(default_factory=dict, sa_type=JSONType)
    state: dict[str, Any] = SQLField(default_factory=dict, sa_type=JSONType)
    tier: str = SQLField(max_length=10)
    status: str = SQLField(default="pending", max_length=20)
    callback_url: str | None = SQLField(default=None, max_length=2000)
    reason: str | None = SQLField(default=None, sa_type=sa.Text)
    modified_arguments: dict[str, Any] | None = SQLField(default=None, sa_type=JSONType)
    decided_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    expires_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    created_at: datetime = _created_at()


class QueueItem(SQLModel, table=True):
    """An escalated case (or a gate) waiting for human review."""

    __tablename__ = "queue_items"
    __table_args__ = (
        sa.Index("ix_queue_items_criterion_status", "criterion_id", "status"),
        sa.UniqueConstraint("decision_id", name="uq_queue_item_decision"),
    )

    id: int | None = SQLField(default=None, primary_key=True)
    kind: str = SQLField(default="judgment", max_length=20, description="judgment or gate")
    session_id: int | None = SQLField(default=None, foreign_key="sessions.id")
    criterion_id: int | None = SQLField(default=None, foreign_key="criteria.id")
    decision_id: int | None = SQLField(default=None, foreign_key="decisions.id")
    gate_id: int | None = SQLField(default=None, foreign_key="gates.id")
    priority: int = SQLField(
        default=0, description="Higher first: safety > drift > low confidence."
    )
    reasons: list[str] = SQLField(default_factory=list, sa_type=JSONType)
    status: str = SQLField(default="open", max_length=20)
    reviews_required: int = 1
    claimed_by: str | None = SQLField(default=None, max_length=512)
    claimed_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    lease_expires_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime, index=True)
    due_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    overdue_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    senior_only: bool = SQLField(
        default=False, description="Overdue items and adjudications go to senior reviewers."
    )
    cluster: int | None = SQLField(default=None, description="Group of similar sessions.")
    created_at: datetime = _created_at()


# claim_next's order within one (status, senior_only): most urgent first, then oldest, so a
# claim reads the first entries instead of sorting every waiting item (migration 0006).
sa.Index(
    "ix_queue_items_claim_order",
    col(QueueItem.status),
    col(QueueItem.senior_only),
    col(QueueItem.priority).desc(),
    col(QueueItem.created_at),
    col(QueueItem.id),
)
# expire_leases' overdue check, run before every claim: it reads only the unfinished items past
# due and not yet marked, per status, instead of scanning the queue (migration 0006).
sa.Index(
    "ix_queue_items_overdue_check",
    col(QueueItem.status),
    col(QueueItem.overdue_at),
    col(QueueItem.due_at),
)


class Review(SQLModel, table=True):
    """One human review of a queue item (appended, never edited)."""

    __tablename__ = "reviews"
    __table_args__ = (
        sa.UniqueConstraint(
            "queue_item_id", "reviewer", "is_adjudication", name="uq_review_item_reviewer"
        ),
    )

    id: int | None = SQLField(default=None, primary_key=True)
    queue_item_id: int = SQLField(foreign_key="queue_items.id", index=True)
    reviewer: str = SQLField(max_length=512)
    label: str | None = SQLField(default=None, max_length=512)
    rationale: str = SQLField(default="", sa_type=sa.Text)
    correction: str | None = SQLField(default=None, sa_type=sa.Text)
    is_adjudication: bool = False
    created_at: datetime = _created_at()


class DriftMonitor(SQLModel, table=True):
    """The persisted state of one stream drift detector of one criterion."""

    __tablename__ = "drift_monitors"
    __table_args__ = (
        sa.UniqueConstraint("criterion_id", "detector", name="uq_drift_criterion_detector"),
    )

    id: int | None = SQLField(default=None, primary_key=True)
    criterion_id: int = SQLField(foreign_key="criteria.id")
    detector: str = SQLField(max_length=40)
    state: dict[str, Any] = SQLField(default_factory=dict, sa_type=JSONType)
    alarmed: bool = False
    alarmed_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    updated_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)


class RateLimitBucket(SQLModel, table=True):
    """A token bucket shared by every process, e.g. the LLM requests left for one model."""

    __tablename__ = "rate_limit_buckets"

    key: str = SQLField(primary_key=True, max_length=200)
    tokens: float = SQLField(description="Requests that may start now; refills continuously.")
    updated_at: datetime = SQLField(sa_type=UTCDateTime)


# --------------------------------------------------------------------------- access


class ApiKey(SQLModel, table=True):
    """An API key: only its SHA-256 is kept."""

    __tablename__ = "api_keys"

    id: int | None = SQLField(default=None, primary_key=True)
    name: str = SQLField(max_length=200)
    role: str = SQLField(max_length=20)
    prefix: str = SQLField(max_length=16, description="First characters, to recognise a key.")
    key_hash: str = SQLField(unique=True, index=True, max_length=64)
    senior: bool = SQLField(default=False, description="Senior reviewers adjudicate.")
    revoked_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    created_at: datetime = _created_at()


class ApiKeyPublic(BaseModel):
    """An API key as listed (never the key itself)."""

    id: int
    name: str
    role: str
    prefix: str
    revoked_at: datetime | None
    created_at: datetime


class AuditEvent(SQLModel, table=True):
    """Who did what, when (appended, never edited)."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_target", "target_type", "target_id"),)

    id: int | None = SQLField(default=None, primary_key=True)
    actor: str = SQLField(max_length=512)
    action: str = SQLField(max_length=100)
    target_type: str = SQLField(max_length=50)
    target_id: str = SQLField(default="", max_length=512)
    detail: dict[str, Any] = SQLField(default_factory=dict, sa_type=JSONType)
    created_at: datetime = _created_at()


class Health(BaseModel):
    """Liveness and database reachability."""

    status: Literal["ok"]
    database: str
    version: str


APPEND_ONLY_TABLES = ("human_labels", "reviews", "audit_events")
IMMUTABLE_TABLES = ("split_assignments",)
