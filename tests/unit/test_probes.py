"""The probe surface (shared/probes.py) answers the same on FastAPI and on aiohttp, and every
service mounts it: each service module that serves HTTP builds its probes there, none by hand."""

from __future__ import annotations

import ast

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from shared import probes
from shared.metrics import CONTENT_TYPE
from shared.settings import RENAMED
from tests.servers import REPO_ROOT


def _probes(healthy: bool, ready: bool) -> probes.Probes:
    async def readiness() -> probes.Answer:
        return probes.ready() if ready else probes.not_ready(kafka="away")

    def health() -> probes.Answer:
        return probes.alive(restarts=0) if healthy else probes.not_alive("loop crashed", error="x")

    async def metrics() -> bytes:
        return b"pinpipe_test_total 1.0\n"

    return probes.Probes(health, readiness, metrics)


async def _fastapi(surface: probes.Probes) -> dict[str, tuple[int, str, str]]:
    from fastapi import FastAPI

    app = FastAPI()
    app.include_router(probes.fastapi_router(surface))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answers = {}
        for path in probes.PATHS:
            response = await client.get(path)
            answers[path] = (response.status_code, response.headers["content-type"], response.text)
    return answers


async def _aiohttp(surface: probes.Probes) -> dict[str, tuple[int, str, str]]:
    async with TestClient(TestServer(probes.aiohttp_app(surface))) as client:
        answers = {}
        for path in probes.PATHS:
            response = await client.get(path)
            answers[path] = (
                response.status,
                response.headers["content-type"],
                await response.text(),
            )
    return answers


@pytest.mark.parametrize(("healthy", "ready"), [(True, True), (True, False), (False, False)])
async def test_both_frameworks_answer_the_same(healthy: bool, ready: bool) -> None:
    surface = _probes(healthy, ready)
    on_fastapi, on_aiohttp = await _fastapi(surface), await _aiohttp(surface)
    statuses = {path: answer[0] for path, answer in on_fastapi.items()}
    assert statuses == {
        "/healthz": 200 if healthy else 503,
        "/readyz": 200 if ready else 503,
        "/metrics": 200,
    }
    for path in ("/healthz", "/readyz"):
        fastapi_status, _, fastapi_body = on_fastapi[path]
        aiohttp_status, aiohttp_type, aiohttp_body = on_aiohttp[path]
        assert aiohttp_status == fastapi_status
        assert aiohttp_type.startswith("application/json")
        assert httpx.Response(200, content=aiohttp_body).json() == (
            httpx.Response(200, content=fastapi_body).json()
        )
    assert (
        on_fastapi["/metrics"][1:]
        == on_aiohttp["/metrics"][1:]
        == (
            CONTENT_TYPE,
            "pinpipe_test_total 1.0\n",
        )
    )


def test_no_service_serves_a_probe_path_by_hand() -> None:
    """No route of a probe path is declared outside shared/probes.py: no ``.get("/healthz")``,
    ``.page("/readyz")`` or ``add_get("/metrics")`` in the services' code."""
    routing = {"get", "page", "add_get", "route", "api_route", "add_route"}
    offenders = []
    for folder in ("services", "shared", "cli"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            if path == REPO_ROOT / "shared" / "probes.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in routing
                    and any(
                        isinstance(arg, ast.Constant) and arg.value in probes.PATHS
                        for arg in node.args
                    )
                ):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert offenders == []


def test_a_renamed_setting_is_refused_with_its_new_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.s3_sink.config import S3SinkSettings

    monkeypatch.setenv("PINPIPE_SINK_PORT", "9999")
    with pytest.raises(ValueError, match="PINPIPE_SINK_PORT is now PINPIPE_S3_SINK_PORT"):
        S3SinkSettings()
    monkeypatch.delenv("PINPIPE_SINK_PORT")
    monkeypatch.setenv("PINPIPE_S3_SINK_PORT", "9999")
    assert S3SinkSettings().s3_sink_port == 9999
    assert RENAMED["PINPIPE_EMULATOR_METRICS_PORT"] == "PINPIPE_EMULATOR_PORT"
