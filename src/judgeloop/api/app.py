"""The FastAPI application: create_app(settings)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from judgeloop import __version__
from judgeloop.api.errors import install_error_handlers
from judgeloop.api.limits import BodySizeLimitMiddleware
from judgeloop.api.routers import (
    criteria,
    gates,
    health,
    judge,
    judges,
    keys,
    labels,
    queue,
    sessions,
)
from judgeloop.api.security_headers import SecurityHeadersMiddleware
from judgeloop.config import Settings, get_settings
from judgeloop.pipeline.build import build_worker
from judgeloop.pipeline.coalesce import Coalescer
from judgeloop.pipeline.worker import WorkerThread
from judgeloop.store import make_engine
from judgeloop.web import install as install_web

THREADS = 256


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment).

    The database schema must be current (`judgeloop db upgrade`); the app does not migrate.
    """
    settings = settings or get_settings()
    engine = make_engine(settings.database_url, echo=settings.database_echo)

    worker = build_worker(settings, engine)
    judging = Coalescer(worker)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync routes run in anyio's thread pool (40 threads by default); a ?wait=true request
        # holds its thread for an LLM call's duration, so 40 threads would cap the requests in
        # flight, and with them throughput, at 40 per LLM latency.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, THREADS)
        thread = None
        if settings.worker:
            thread = WorkerThread(worker, poll_seconds=settings.worker_poll_seconds)
            thread.start()
        yield
        if thread is not None:
            thread.stop()
        judging.close()
        engine.dispose()

    app = FastAPI(
        title="judgeloop",
        version=__version__,
        summary="LLM-as-judge calibration with human escalation.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.worker = worker
    app.state.judging = judging
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Added last, so outermost: its headers reach the limit middleware's 413 and 422 too.
    app.add_middleware(SecurityHeadersMiddleware)
    install_error_handlers(app)
    for module in (health, sessions, labels, criteria, judges, keys, queue, judge):
        app.include_router(module.router)
    app.include_router(gates.router)
    install_web(app)
    return app
