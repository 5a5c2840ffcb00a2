"""Settings for judgeloop, read from ``JUDGELOOP_*`` environment variables on demand."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, PositiveFloat
from pydantic_settings import BaseSettings, SettingsConfigDict

from judgeloop.redaction import PII_KINDS, PiiKind


class Settings(BaseSettings):
    """Every knob of the service; each field is also the env var ``JUDGELOOP_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="JUDGELOOP_", env_file=None, extra="ignore")

    database_url: str = Field(
        default="sqlite:///judgeloop.db",
        description="SQLAlchemy URL; e.g. postgresql+psycopg://user:pw@host/db for PostgreSQL.",
    )
    database_echo: bool = Field(default=False, description="Log every SQL statement.")
    max_batch_size: int = Field(
        default=500, ge=1, description="Most sessions accepted in one POST /v1/sessions."
    )
    max_body_bytes: int = Field(
        default=5_000_000, ge=1024, description="Largest request body accepted, in bytes (413)."
    )
    demo_dir: Path | None = Field(
        default=None, description="Folder with the demo data; found automatically when unset."
    )
    judges_dir: Path = Field(
        default=Path("judges"), description="Folder of judge spec files (judges/**/*.yaml)."
    )
    host: str = Field(default="127.0.0.1", description="Address `judgeloop serve` binds to.")
    port: int = Field(default=8000, description="Port `judgeloop serve` listens on.")
    policy_file: Path | None = Field(
        default=None,
        description="Escalation policy YAML; default: escalation.yaml in the judges folder, "
        "else the built-in defaults.",
    )
    worker: bool = Field(
        default=True,
        description="Run the scoring worker inside `judgeloop serve` (off when separate "
        "`judgeloop worker` processes do it).",
    )
    worker_poll_seconds: float = Field(
        default=0.5, gt=0, description="How often an idle worker looks for pending sessions."
    )
    worker_concurrency: int = Field(
        default=4, ge=1, description="Scoring jobs one worker runs at once (PostgreSQL)."
    )
    worker_job_size: int = Field(
        default=32,
        ge=1,
        description="Sessions per scoring job (PostgreSQL): accepted sessions are deferred "
        "in jobs of at most this many.",
    )
    worker_stalled_seconds: float = Field(
        default=30,
        gt=0,
        description="A worker without a heartbeat for this long counts as dead and its jobs "
        "go to another worker (PostgreSQL); heartbeats come four times per period. A pending "
        "session without a job this long gets one.",
    )
    worker_sweep_seconds: float = Field(
        default=10,
        gt=0,
        description="How often workers retry dead workers' jobs and defer jobs for sessions "
        "left pending without one (PostgreSQL).",
    )
    llm_requests_per_minute: dict[str, PositiveFloat] = Field(
        default_factory=dict,
        description='Requests per minute per litellm model, e.g. {"openai/gpt-4o-mini": 500} '
        '("*": any other model), shared by every process through the database; empty: '
        "no limit.",
    )
    review_lease_minutes: float = Field(
        default=15, gt=0, description="A claim's soft timeout: the item returns to the pool."
    )
    review_hard_timeout_hours: float = Field(
        default=4, gt=0, description="Past this an item is overdue and goes to senior reviewers."
    )
    gates_file: Path | None = Field(
        default=None,
        description="Gate rules YAML; default: gates.yaml in the judges folder, else no rules "
        "(every action red).",
    )
    gate_hard_timeout_hours: float = Field(
        default=4, gt=0, description="A pending gate expires (rejected) after this long."
    )
    gate_soft_timeout_minutes: float = Field(
        default=15, gt=0, description="A pending gate older than this is raised in priority."
    )
    gate_max_state_bytes: int = Field(
        default=1_000_000, ge=1024, description="Largest agent state stored with a gate."
    )
    gate_daily_target: int = Field(
        default=10, ge=0, description="Target human gate decisions per day (approval fatigue)."
    )
    redact_pii: bool = Field(
        default=True,
        description="Replace PII in sessions and gate state with placeholders ([EMAIL], [PHONE], "
        "[CARD], [IBAN], [SECRET]) before they are stored, so no judge or LLM sees it.",
    )
    redact_pii_kinds: list[PiiKind] = Field(
        default_factory=lambda: list(PII_KINDS),
        description='Kinds redacted when redact_pii is on, e.g. ["email", "card"] '
        "(of: email, phone, card, iban, secret).",
    )
    judge_retry_backoff_seconds: float = Field(
        default=0.5,
        ge=0,
        description="First wait before retrying a failed LLM judge call (doubles, jittered); "
        "a provider's Retry-After takes precedence.",
    )
    judge_circuit_failures: int = Field(
        default=5,
        ge=1,
        description="Consecutive failed requests to one model (timeouts, 429, 5xx, dropped "
        "connections, auth) that open its circuit breaker: calls then fail fast.",
    )
    judge_circuit_cooldown_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long an open circuit breaker fails fast before one trial call.",
    )
    litellm_local_cost_map: bool = Field(
        default=True,
        description="Use litellm's packaged price map instead of fetching it at import.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, built from the environment on first use."""
    return Settings()
