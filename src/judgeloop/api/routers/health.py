"""Liveness: GET /v1/healthz (any key) and GET /healthz (no key, for load balancers)."""

from fastapi import APIRouter
from sqlalchemy import text

from judgeloop import __version__
from judgeloop.api.deps import AnyRoleKey, SessionDep
from judgeloop.models import Health

router = APIRouter(tags=["health"])


def _check(db: SessionDep) -> Health:
    db.exec(text("SELECT 1"))  # type: ignore[call-overload]
    db.rollback()
    return Health(status="ok", database=db.get_bind().dialect.name, version=__version__)


@router.get("/v1/healthz", response_model=Health)
def healthz(db: SessionDep, key: AnyRoleKey) -> Health:
    """Report that the service and its database answer."""
    return _check(db)


@router.get("/healthz", response_model=Health, include_in_schema=False)
def public_healthz(db: SessionDep) -> Health:
    """The same check without a key, for load balancers."""
    return _check(db)
