"""The ingest API's probes (shared/probes.py), open even when API keys are configured."""

from __future__ import annotations

from fastapi import APIRouter

from services.ingest_api.metrics import METRICS
from services.ingest_api.producer import BrokerUnavailable, KafkaGateway
from shared import probes


def router(gateway: KafkaGateway) -> APIRouter:
    """``/healthz`` (alive), ``/readyz`` (connected to Kafka: a metadata request answers) and
    ``/metrics``."""

    async def readiness() -> probes.Answer:
        try:
            if not gateway.started:
                raise BrokerUnavailable("producer not started")
            await gateway.refresh_metadata()
        except BrokerUnavailable as exc:
            return probes.not_ready(detail=str(exc))
        return probes.ready()

    return probes.fastapi_router(
        probes.Probes(probes.alive, readiness, probes.render_with(METRICS.render))
    )
