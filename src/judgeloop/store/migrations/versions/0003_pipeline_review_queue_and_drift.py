"""pipeline, review queue and drift

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:21:43.731922
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from judgeloop.types import JSONType, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "drift_monitors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("criterion_id", sa.Integer(), nullable=False),
        sa.Column("detector", AutoString(length=40), nullable=False),
        sa.Column("state", JSONType, nullable=False),
        sa.Column("alarmed", sa.Boolean(), nullable=False),
        sa.Column("alarmed_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["criterion_id"], ["criteria.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("criterion_id", "detector", name="uq_drift_criterion_detector"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("senior", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("judge_version_id", AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("calibrated_confidence", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("priority", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column("detail", JSONType, server_default=sa.text("'{}'"), nullable=False)
        )
        batch_op.create_unique_constraint(
            "uq_decision_session_version", ["session_id", "judge_version_id"]
        )
        batch_op.create_foreign_key(
            "fk_decisions_judge_version", "judge_versions", ["judge_version_id"], ["id"]
        )

    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("overdue_at", UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("senior_only", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("cluster", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint("uq_queue_item_decision", ["decision_id"])

    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_review_item_reviewer", ["queue_item_id", "reviewer", "is_adjudication"]
        )

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pipeline_status", AutoString(length=20), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_sessions_pipeline_status"), ["pipeline_status"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_pipeline_status"))
        batch_op.drop_column("pipeline_status")

    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_constraint("uq_review_item_reviewer", type_="unique")

    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.drop_constraint("uq_queue_item_decision", type_="unique")
        batch_op.drop_column("cluster")
        batch_op.drop_column("senior_only")
        batch_op.drop_column("overdue_at")
        batch_op.drop_column("claimed_at")

    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_decisions_judge_version", type_="foreignkey")
        batch_op.drop_constraint("uq_decision_session_version", type_="unique")
        batch_op.drop_column("detail")
        batch_op.drop_column("priority")
        batch_op.drop_column("calibrated_confidence")
        batch_op.drop_column("judge_version_id")

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("senior")

    op.drop_table("drift_monitors")
