"""Alembic migrations of the judgeloop schema."""
