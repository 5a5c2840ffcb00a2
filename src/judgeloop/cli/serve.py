"""`judgeloop serve`: run the API server."""

import typer

from judgeloop.config import get_settings


def serve_command(
    host: str | None = typer.Option(None, help="Address to bind (JUDGELOOP_HOST)."),
    port: int | None = typer.Option(None, help="Port (JUDGELOOP_PORT)."),
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) and the web UI.

    With JUDGELOOP_WORKER=true (the default) a scoring worker runs in the process too. On
    PostgreSQL any number of servers can run behind a load balancer, each with
    JUDGELOOP_WORKER=false and `judgeloop worker` processes doing the scoring (docs/deploy.md).
    """
    import uvicorn

    from judgeloop.api import create_app

    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
    )
