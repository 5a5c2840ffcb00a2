"""Exception handlers: store errors become 404/409/422 answers that name the field."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from judgeloop.store import ConflictError, InvalidInputError, NotFoundError
from judgeloop.store.retry import RETRY_AFTER_SECONDS, transient_cause

_CHOICE_ERRORS = ("literal_error", "enum")


def _shown(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _is_union_tag(part: object) -> bool:
    # A body typed "one item or a list" makes pydantic tag each error with the union branch
    # ("SessionCreate", "list[SessionCreate]"); readers want the field path alone.
    return isinstance(part, str) and (part[:1].isupper() or "[" in part)


def _relevant_errors(errors: list[dict[str, Any]], body: Any) -> list[dict[str, Any]]:
    """Keep the errors of the union branch matching the body's shape, without the tags."""

    def from_list_branch(error: dict[str, Any]) -> bool:
        return any(isinstance(p, str) and p.startswith("list[") for p in error.get("loc", ()))

    kept = [e for e in errors if from_list_branch(e) == isinstance(body, list)] or errors
    return [{**e, "loc": [p for p in e.get("loc", ()) if not _is_union_tag(p)]} for e in kept]


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each field that is wrong and why."""
    assert isinstance(exc, RequestValidationError)
    errors = _relevant_errors(list(exc.errors()), getattr(exc, "body", None))
    for error in errors:
        error.pop("ctx", None)
        error.pop("url", None)
        error["msg"] = str(error.get("msg", "")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            error["msg"] = f"request body is not valid JSON: {error['msg']}"
        elif error.get("type") in _CHOICE_ERRORS and isinstance(error.get("input"), str):
            # "Input should be 'a' or 'b'" lists the choices; say what was sent as well.
            error["msg"] = f"{error['msg']}, not {_shown(error['input'])}"
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": jsonable_encoder(errors)},
    )


async def invalid_input_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 for input that parsed but does not fit the stored data."""
    assert isinstance(exc, InvalidInputError)
    detail = [
        {"loc": ["body", *problem.loc], "msg": problem.msg, "type": problem.type}
        for problem in exc.problems
    ]
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail}
    )


async def not_found_handler(request: Request, exc: Exception) -> JSONResponse:
    """404 with the store's explanation."""
    return JSONResponse(status_code=status.HTTP_404_NOT_FOUND, content={"detail": str(exc)})


async def conflict_handler(request: Request, exc: Exception) -> JSONResponse:
    """409 with the store's explanation (who holds the claim, why it cannot be taken)."""
    return JSONResponse(status_code=status.HTTP_409_CONFLICT, content={"detail": str(exc)})


async def database_fault_handler(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After naming the fault when the database is busy or unreachable.

    Any other database error is a bug and stays a 500.
    """
    cause = transient_cause(exc)
    if cause is None:
        raise exc
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": f"{cause}; retry in {RETRY_AFTER_SECONDS} s"},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def unstorable_value_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 for a value the database cannot hold, where no declared bound caught it first.

    API parameters declare their range and name themselves; this covers the rest (web
    pages and forms): SQLite refuses to bind ints beyond 64 bits (OverflowError),
    PostgreSQL refuses out-of-range numbers and bad text (DataError).
    """
    if isinstance(exc, sa_exc.DataError):
        reason = str(exc.orig).strip().splitlines()[0]
    else:
        reason = str(exc)
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={
            "detail": [
                {
                    "loc": ["request"],
                    "msg": f"a value in the request cannot be stored: {reason}",
                    "type": "value_unstorable",
                }
            ]
        },
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(InvalidInputError, invalid_input_handler)
    app.add_exception_handler(NotFoundError, not_found_handler)
    app.add_exception_handler(ConflictError, conflict_handler)
    app.add_exception_handler(OverflowError, unstorable_value_handler)
    # Matched before DBAPIError (below): the request's data, not the database, is at fault.
    app.add_exception_handler(sa_exc.DataError, unstorable_value_handler)
    app.add_exception_handler(sa_exc.DBAPIError, database_fault_handler)
    app.add_exception_handler(sa_exc.TimeoutError, database_fault_handler)
