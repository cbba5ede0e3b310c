"""Service routes, open even when API keys are configured: health, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.ingest_api.metrics import METRICS
from services.ingest_api.producer import BrokerUnavailable
from services.ingest_api.routes.common import gateway_of
from shared.metrics import CONTENT_TYPE

router = APIRouter(tags=["service"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "not connected to Kafka", "model": dict[str, str]}},
)
async def readyz(request: Request, response: Response) -> dict[str, str]:
    """Connected to Kafka (a metadata request answers)."""
    gateway = gateway_of(request)
    try:
        if not gateway.started:
            raise BrokerUnavailable("producer not started")
        await gateway.refresh_metadata()
    except BrokerUnavailable as exc:
        response.status_code = 503
        return {"status": "not ready", "detail": str(exc)}
    return {"status": "ready"}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    """Prometheus metrics."""
    return Response(METRICS.render(), media_type=CONTENT_TYPE)
