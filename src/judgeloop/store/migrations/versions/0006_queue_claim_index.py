"""queue claim indexes: claim_next and the overdue check read indexes, without a sort or scan

``ix_queue_items_claim_order`` is ``(status, senior_only, priority DESC, created_at, id)``:
for one status and one senior routing, its entries are in exactly claim_next's order (most
urgent first, then oldest, then id), so a claim reads the first few entries instead of sorting
every waiting item. It replaces ``ix_queue_items_status_priority`` (``status, priority,
created_at``, ascending on priority), whose status lookups the new index serves as well.

``ix_queue_items_overdue_check`` is ``(status, overdue_at, due_at)``: expire_leases, which the
API and the reviewer UI run before each claim, finds the unfinished items past due and not yet
marked overdue with one range per status instead of scanning the whole queue.

Plain CREATE/DROP INDEX on both databases: no SQLite table rebuild, so the audit triggers of
0004 are untouched.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 16:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        "ix_queue_items_claim_order",
        "queue_items",
        ["status", "senior_only", sa.text("priority DESC"), "created_at", "id"],
        unique=False,
    )
    op.drop_index("ix_queue_items_status_priority", table_name="queue_items")
    op.create_index(
        "ix_queue_items_overdue_check",
        "queue_items",
        ["status", "overdue_at", "due_at"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.create_index(
        "ix_queue_items_status_priority",
        "queue_items",
        ["status", "priority", "created_at"],
        unique=False,
    )
    op.drop_index("ix_queue_items_claim_order", table_name="queue_items")
    op.drop_index("ix_queue_items_overdue_check", table_name="queue_items")
