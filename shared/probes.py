"""``/healthz``, ``/readyz`` and ``/metrics``: the probe surface every pinpipe service serves,
declared once.

- ``GET /healthz``, liveness: 200 ``{"status": "ok", ...}`` while the process can go on;
  503 ``{"status": "<what went wrong>", ...}`` when it should be restarted (a crashed loop, a
  worker in its restart pause). Kubernetes' liveness probe.
- ``GET /readyz``, readiness: 200 ``{"status": "ready"}`` while the service does its work (its
  dependencies answer); 503 ``{"status": "not ready", ...why}`` otherwise. Kubernetes'
  readiness probe, ``pinpipe up`` and the tests wait on it.
- ``GET /metrics``: the service's Prometheus registry in the text exposition format.

A service states what it knows as one :class:`Probes` (three callables, framework-free);
:func:`fastapi_router` mounts it on a FastAPI app (ingest API, cleaner, sink) and
:func:`aiohttp_app` / :func:`serve_aiohttp` on aiohttp (the emulator; the aggregator between
Faust workers). The aggregator's Faust worker mounts the same answers with ``app.page``
(``services/aggregator/app.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from shared.metrics import CONTENT_TYPE

PATHS = ("/healthz", "/readyz", "/metrics")
AiohttpHandler = Callable[[web.Request], Awaitable[web.Response]]


@dataclass(frozen=True)
class Answer:
    """A probe's answer: its HTTP status and JSON body."""

    status: int
    body: dict[str, Any]


def alive(**details: Any) -> Answer:
    return Answer(200, {"status": "ok", **details})


def not_alive(status: str, **details: Any) -> Answer:
    """The process should be restarted; ``status`` says why in a few words."""
    return Answer(503, {"status": status, **details})


def ready() -> Answer:
    return Answer(200, {"status": "ready"})


def not_ready(**why: Any) -> Answer:
    return Answer(503, {"status": "not ready", **why})


@dataclass(frozen=True)
class Probes:
    """What a service answers on its probe paths."""

    health: Callable[[], Answer]
    readiness: Callable[[], Awaitable[Answer]]
    metrics: Callable[[], Awaitable[bytes]]


def render_with(render: Callable[[], bytes]) -> Callable[[], Awaitable[bytes]]:
    """``Probes.metrics`` from a plain render function (``ServiceMetrics.render``)."""

    async def metrics() -> bytes:
        return render()

    return metrics


def fastapi_router(probes: Probes) -> APIRouter:
    """The probe paths as FastAPI routes (documented in the app's OpenAPI, tag ``service``)."""
    router = APIRouter(tags=["service"])

    @router.get("/healthz", responses={503: {"description": "not alive: restart it"}})
    async def healthz() -> JSONResponse:
        """Alive."""
        answer = probes.health()
        return JSONResponse(answer.body, status_code=answer.status)

    @router.get("/readyz", responses={503: {"description": "not ready: why, in the body"}})
    async def readyz() -> JSONResponse:
        """Doing its work: its dependencies answer."""
        answer = await probes.readiness()
        return JSONResponse(answer.body, status_code=answer.status)

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(await probes.metrics(), media_type=CONTENT_TYPE)

    return router


def aiohttp_handlers(probes: Probes) -> dict[str, AiohttpHandler]:
    """The probe paths as aiohttp handlers, by path."""

    async def healthz(request: web.Request) -> web.Response:
        return json_response(probes.health())

    async def readyz(request: web.Request) -> web.Response:
        return json_response(await probes.readiness())

    async def metrics(request: web.Request) -> web.Response:
        return metrics_response(await probes.metrics())

    return {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics}


def json_response(answer: Answer) -> web.Response:
    return web.json_response(answer.body, status=answer.status)


def metrics_response(body: bytes) -> web.Response:
    # as a header: aiohttp's content_type argument refuses parameters (version, charset)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def aiohttp_app(probes: Probes, middlewares: tuple[Any, ...] = ()) -> web.Application:
    """An aiohttp application serving the probe paths only."""
    app = web.Application(middlewares=middlewares)
    for path, handler in aiohttp_handlers(probes).items():
        app.router.add_get(path, handler)
    return app


async def serve_aiohttp(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` in the running event loop; the runner
    (``await runner.cleanup()`` stops it). Raises OSError when the port is taken."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
