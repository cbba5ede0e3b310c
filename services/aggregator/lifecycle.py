"""The aggregator's life outside the Faust worker: waiting for Kafka before the worker starts,
and starting the worker again, in place, after it stopped on an error.

Faust exits when the broker is away at start-up, and an agent that crashes stays dead inside
a live worker. So ``pinpipe aggregator`` (``main.py``) first waits for the broker and its
topics here, with the same backoff as every service (the changelog topic is created too, with
a leader for each partition, so Faust never meets it half made), answering ``/healthz`` 200
and ``/readyz`` 503 on its port meanwhile. When the worker stops on an error (a crashed agent,
a broker lost during start-up), the process waits out a backoff, answering ``/healthz`` 503,
and re-executes itself: the same pid, a fresh interpreter and Faust app, tables restored from
the changelog. The restart count lives in a small file of the data dir, keyed by pid, so the
backoff grows across restarts of one process and starts over in a new one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from services.aggregator.api import errors_middleware
from services.aggregator.config import AggregatorSettings
from services.aggregator.metrics import METRICS
from shared import probes
from shared.kafka_admin import ensure_topics
from shared.retry import Attempts, retry, sleep_or_stop
from shared.topics import clean_topics

log = logging.getLogger("pinpipe.aggregator")
# a worker that ran this long before failing starts its backoff from the beginning again
HEALTHY_RUN_SECONDS = 60.0


@dataclass
class Restarts:
    """In-place restarts of this process (kept across ``exec`` in ``<datadir>/restarts.json``)."""

    path: Path
    count: int = 0  # restarts of this process so far
    streak: int = 0  # failures in a row, each after less than HEALTHY_RUN_SECONDS of running
    failing_since: float = 0.0  # wall time of the first failure of the streak

    @classmethod
    def load(cls, datadir: Path) -> Restarts:
        path = datadir / "restarts.json"
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls(path)
        if saved.get("pid") != os.getpid():  # another process's: this one starts afresh
            return cls(path)
        return cls(path, int(saved["count"]), int(saved["streak"]), float(saved["failing_since"]))

    def failed(self, reason: str, ran_seconds: float, settings: AggregatorSettings) -> float:
        """Count a failure of the worker; the backoff before the restart. Raises GaveUp past
        ``PINPIPE_GIVE_UP_AFTER_SECONDS`` of failing."""
        now = time.time()
        if ran_seconds >= HEALTHY_RUN_SECONDS or not self.streak:
            self.streak, self.failing_since = 0, now
        attempts = Attempts(settings.backoff(), "aggregator worker", count=self.streak)
        attempts.first_failure = time.monotonic() - (now - self.failing_since)
        delay = attempts.failed(reason)
        self.count += 1
        self.streak += 1
        saved = {"pid": os.getpid(), "count": self.count, "streak": self.streak}
        self.path.write_text(json.dumps({**saved, "failing_since": self.failing_since}))
        return delay


class Pages:
    """The probes (shared/probes.py) on the aggregator's port while the Faust worker, which
    serves them otherwise, is not running: ``/healthz`` (200 while waiting for Kafka, 503 in a
    restart's pause), ``/readyz`` (always 503) and ``/metrics``."""

    def __init__(self, settings: AggregatorSettings) -> None:
        self.settings = settings
        self.healthy = True
        self.status = "starting"
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        surface = probes.Probes(self._health, self._readiness, probes.render_with(METRICS.render))
        try:
            self._runner = await probes.serve_aiohttp(
                probes.aiohttp_app(surface, (errors_middleware,)),  # errors in the API's format
                self.settings.aggregator_host,
                self.settings.aggregator_port,
            )
        except OSError as exc:  # the port is still held: go on without the pages
            log.warning("health pages not served", extra={"error": repr(exc)})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _health(self) -> probes.Answer:
        return probes.alive() if self.healthy else probes.not_alive(self.status)

    async def _readiness(self) -> probes.Answer:
        return probes.not_ready(detail=self.status)


async def _with_pages(
    settings: AggregatorSettings,
    status: str,
    healthy: bool,
    work: Callable[[asyncio.Event], Awaitable[Any]],
) -> bool:
    """Run ``work(stop)`` with the pages up; False when SIGTERM/SIGINT stopped it first."""
    pages = Pages(settings)
    pages.status, pages.healthy = status, healthy
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await pages.start()
    try:
        await work(stop)
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
    finally:
        await pages.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return not stop.is_set()


def wait_for_kafka(settings: AggregatorSettings, changelog_topic: str) -> bool:
    """Block until the broker answers and the clean topics and the posts changelog exist with
    a leader per partition; False when asked to stop meanwhile. Raises GaveUp."""

    async def work(stop: asyncio.Event) -> None:
        backoff = settings.backoff()
        kafka = settings.kafka_connection()
        partitions, replication = settings.topic_partitions, settings.topic_replication_factor
        await retry(
            "kafka (clean topics)",
            lambda: ensure_topics(kafka, clean_topics(), partitions, replication),
            backoff,
            stop=stop,
        )
        await retry(
            "kafka (posts changelog)",
            lambda: ensure_topics(
                kafka,
                [changelog_topic],
                partitions,
                replication,
                configs={"cleanup.policy": "compact"},  # as Faust declares a changelog
            ),
            backoff,
            stop=stop,
        )

    return asyncio.run(_with_pages(settings, "waiting for kafka", True, work))


def restart_in_place(settings: AggregatorSettings, reason: str, ran_seconds: float) -> None:
    """After the worker stopped on an error: wait out the backoff (``/healthz`` 503), then
    execute this same command again in this process. Returns only when a signal asked the
    process to stop during the wait; raises GaveUp past the limit."""
    restarts = Restarts.load(settings.aggregator_datadir)
    delay = restarts.failed(reason, ran_seconds, settings)
    log.error(
        "aggregator worker stopped on an error; restarting it in place",
        extra={"reason": reason, "restarts": restarts.count, "delay": round(delay, 2)},
    )

    async def pause(stop: asyncio.Event) -> None:
        await sleep_or_stop(delay, stop)

    if not asyncio.run(_with_pages(settings, f"restarting after: {reason}", False, pause)):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
