"""A Worker configured from Settings (policy file, judges folder, review timeouts, jobs)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from judgeloop.config import Settings
from judgeloop.escalation import load_policy
from judgeloop.escalation.policy_file import default_policy_path
from judgeloop.judges import rate_limit
from judgeloop.pipeline.jobs import JobOptions, uses_jobs
from judgeloop.pipeline.process import PipelineOptions
from judgeloop.pipeline.worker import Worker


def build_worker(settings: Settings, engine: Engine, *, actor: str = "pipeline") -> Worker:
    """The pipeline worker for ``settings``; judges load on first use, not here.

    On PostgreSQL it scores through procrastinate jobs (see ``pipeline.jobs``). The LLM rate
    limits of ``settings`` are installed for the process (see ``judges.rate_limit``).
    """
    limits = settings.llm_requests_per_minute
    rate_limit.install(rate_limit.SharedRateLimit(engine, limits) if limits else None)
    policy_path = default_policy_path(settings)
    return Worker(
        engine=engine,
        policy=load_policy(policy_path),
        judges_dir=settings.judges_dir,
        policy_path=policy_path,
        options=PipelineOptions(
            actor=actor, hard_timeout=timedelta(hours=settings.review_hard_timeout_hours)
        ),
        jobs=JobOptions.from_settings(settings) if uses_jobs(engine) else None,
    )
