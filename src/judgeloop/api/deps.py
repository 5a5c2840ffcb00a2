"""Request dependencies as Annotated aliases; tests swap them via dependency_overrides."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session as DbSession

from judgeloop.config import Settings
from judgeloop.models import ApiKey, ApiRole
from judgeloop.store import authenticate, db_session


def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """The app's database engine."""
    engine: Engine = request.app.state.engine
    return engine


def get_db(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[DbSession]:
    """A database session for one request."""
    with db_session(engine) as db:
        yield db


# Row ids and other stored integers are INTEGER columns, 32-bit on PostgreSQL (and SQLite
# cannot bind a Python int beyond 64 bits): bigger numbers get a 422 naming the parameter,
# not a database error.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=INT_MAX)]

SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[DbSession, Depends(get_db)]
EngineDep = Annotated[Engine, Depends(get_engine)]

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="or `X-API-Key`")


def get_current_key(
    db: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_header_key)],
) -> ApiKey:
    """The API key of the request; 401 when missing, unknown or revoked."""
    presented = bearer.credentials if bearer else header_key
    key = authenticate(db, presented) if presented else None
    if key is not None:
        # Detached, the key's attributes stay loaded: a rollback would expire them, and the
        # refresh on next access would open a transaction (on SQLite, the write lock) that
        # lasts the whole request.
        db.expunge(key)
    db.rollback()
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid API key" if presented is None else "invalid API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return key


CurrentKey = Annotated[ApiKey, Depends(get_current_key)]


def require_roles(*roles: ApiRole) -> Callable[[ApiKey], ApiKey]:
    """A dependency that admits keys of ``roles`` (admins always) and answers 403 otherwise."""
    allowed = set(roles) | {"admin"}

    def check(key: CurrentKey) -> ApiKey:
        if key.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role {key.role!r} may not do this; allowed roles: "
                f"{', '.join(sorted(allowed))}",
            )
        return key

    return check


def actor_of(key: ApiKey) -> str:
    """How a key appears in the audit trail."""
    return f"key:{key.id}:{key.name}"


AnyRoleKey = Annotated[ApiKey, Depends(require_roles("pipeline", "reviewer", "engineer"))]
PipelineKey = Annotated[ApiKey, Depends(require_roles("pipeline", "engineer"))]
EngineerKey = Annotated[ApiKey, Depends(require_roles("engineer"))]
ReviewerKey = Annotated[ApiKey, Depends(require_roles("reviewer"))]
AdminKey = Annotated[ApiKey, Depends(require_roles())]
