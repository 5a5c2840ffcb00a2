"""A Worker configured from Settings (policy file, judges folder, review timeouts)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from judgeloop.config import Settings
from judgeloop.escalation import load_policy
from judgeloop.escalation.policy_file import default_policy_path
from judgeloop.pipeline.process import PipelineOptions
from judgeloop.pipeline.worker import Worker


def build_worker(settings: Settings, engine: Engine, *, actor: str = "pipeline") -> Worker:
    """The pipeline worker for ``settings``; judges load on first use, not here."""
    policy_path = default_policy_path(settings)
    return Worker(
        engine=engine,
        policy=load_policy(policy_path),
        judges_dir=settings.judges_dir,
        policy_path=policy_path,
        options=PipelineOptions(
            actor=actor, hard_timeout=timedelta(hours=settings.review_hard_timeout_hours)
        ),
    )
