"""Runs the emulator: the posting loop of poster.py, with its probes (shared/probes.py) served
beside it in the same event loop: ``/healthz`` (alive), ``/readyz`` (the ingest API took the
last request: it answered, and not with a 5xx) and ``/metrics``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.emulator import poster
from services.emulator.client import API_HEALTH, ApiHealth, Tally
from services.emulator.config import EmulatorSettings
from services.emulator.metrics import METRICS
from shared import probes


def create_probes(health: ApiHealth = API_HEALTH) -> probes.Probes:
    async def readiness() -> probes.Answer:
        if health.reached:
            return probes.ready()
        return probes.not_ready(
            reason="starting" if health.reached is None else "ingest API unreachable"
        )

    return probes.Probes(probes.alive, readiness, probes.render_with(METRICS.render))


async def run(
    settings: EmulatorSettings,
    options: poster.RunOptions,
    posts: AsyncIterator[poster.Post],
    serve_probes: bool = True,
) -> Tally:
    """Post ``posts`` as ``options`` say (poster.run), serving the probes meanwhile."""
    runner = None
    if serve_probes:
        runner = await probes.serve_aiohttp(
            probes.aiohttp_app(create_probes()),
            settings.emulator_host,
            settings.emulator_port,
        )
    try:
        return await poster.run(options, posts)
    finally:
        if runner is not None:
            await runner.cleanup()
