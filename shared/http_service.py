"""Runs a FastAPI service under uvicorn with pinpipe's JSON logging (ingest API, cleaner,
sink), and keeps a service's background loop alive for the life of its process.

A loop that crashes is started again in place, as a new loop object, after a capped
exponential backoff (:class:`SupervisedLoop`); ``/healthz`` answers 503 from the crash until
the new loop runs, so a crash is never silent. Only giving up (``PINPIPE_GIVE_UP_AFTER_SECONDS``)
ends the process, with a non-zero exit code and the reason in the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI
from prometheus_client import Counter

from shared import probes
from shared.broker_watch import BrokerWatch
from shared.kafka_security import KafkaConnection
from shared.logs import configure_logging
from shared.retry import EXIT_GAVE_UP, Attempts, Backoff, GaveUp, sleep_or_stop

log = logging.getLogger(__name__)
# a loop that ran this long before crashing starts its backoff from the beginning again
HEALTHY_RUN_SECONDS = 60.0
# requests still open this long after SIGTERM are cut (a stalled client must not hold the stop
# past the pods' 30 s grace period: the producer flush after it needs time too)
GRACEFUL_SHUTDOWN_SECONDS = 20


def serve(app: FastAPI, *, service: str, host: str, port: int, log_level: str) -> None:
    """Serve ``app`` in the foreground until SIGINT/SIGTERM (then its lifespan shuts down).
    Exits non-zero when the app recorded a fatal error (``app.state.fatal``)."""
    configure_logging(service, log_level)
    app.state.fatal = None
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    )
    app.state.server = server  # a fatal error stops it (stop_process_on_fatal)
    server.run()
    if app.state.fatal is not None:
        log.error(f"{service} stopped: {app.state.fatal}")
        sys.exit(EXIT_GAVE_UP)


class BackgroundLoop(Protocol):
    """A service's consuming loop: runs until ``stop`` is set; ``ready`` once it is working."""

    @property
    def ready(self) -> bool: ...

    async def run(self, stop: asyncio.Event) -> None: ...


class SupervisedLoop:
    """Runs ``make_loop()``'s loop until ``stop`` is set; when it raises, a fresh loop is made
    and started after a backoff (its state starts over from the committed offsets, as after a
    process restart). :class:`GaveUp` is not restarted: it ends :meth:`run`."""

    def __init__(
        self,
        name: str,
        make_loop: Callable[[], BackgroundLoop],
        backoff: Backoff,
        restarts_total: Counter | None = None,
    ) -> None:
        self.name = name
        self.make_loop = make_loop
        self.backoff = backoff
        self.restarts_total = restarts_total
        self.current: BackgroundLoop | None = None
        self.crashed: str | None = None  # why, from a crash until the restarted loop runs
        self.restarts = 0

    @property
    def ready(self) -> bool:
        return self.crashed is None and self.current is not None and self.current.ready

    async def run(self, stop: asyncio.Event) -> None:
        attempts = Attempts(self.backoff, f"{self.name} loop")
        while not stop.is_set():
            self.current = self.make_loop()
            started = time.monotonic()
            try:
                self.crashed = None
                await self.current.run(stop)
                return
            except GaveUp:
                raise
            except Exception as exc:
                self.crashed = repr(exc)
                if time.monotonic() - started >= HEALTHY_RUN_SECONDS:
                    attempts.succeeded()  # it worked for a while: a new outage, a new count
                delay = attempts.failed(exc)
                self.restarts += 1
                if self.restarts_total is not None:
                    self.restarts_total.inc()
                log.error(
                    f"{self.name} loop crashed; restarting it in place",
                    extra={"restarts": self.restarts, "delay": round(delay, 2)},
                    exc_info=exc,
                )
                await sleep_or_stop(delay, stop)


def stop_process_on_fatal(app: FastAPI) -> Callable[[asyncio.Task[None]], None]:
    """Done-callback of a service's supervised loop or connecting task: one that ended with an
    error (only giving up does) stops the server, and the process then exits non-zero
    (:func:`serve`)."""

    def done(task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        app.state.fatal = repr(task.exception())
        log.error(
            "background loop gave up; stopping the service",
            extra={"task": task.get_name()},
            exc_info=task.exception(),
        )
        server = getattr(app.state, "server", None)
        if server is not None:
            server.should_exit = True  # a graceful stop; serve() then exits with EXIT_GAVE_UP
        else:  # served some other way: stop the process as SIGTERM would
            os.kill(os.getpid(), signal.SIGTERM)

    return done


def loop_service_app(
    title: str,
    make_loop: Callable[[], BackgroundLoop],
    render_metrics: Callable[[], bytes],
    started: dict[str, Any],
    backoff: Backoff,
    kafka: KafkaConnection,
    restarts_total: Counter | None = None,
) -> FastAPI:
    """A FastAPI app that supervises ``make_loop()``'s loop for its lifetime (stopping it
    gracefully at shutdown, restarting it when it crashes) and serves ``/healthz`` (503 from a
    crash until the restart), ``/readyz`` (the loop is ready and the broker answers) and
    ``/metrics`` (shared/probes.py)."""
    supervised = SupervisedLoop(title, make_loop, backoff, restarts_total)
    broker = BrokerWatch(kafka)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(supervised.run(stop), name=title)
        task.add_done_callback(stop_process_on_fatal(app))
        watch = asyncio.create_task(broker.run(stop), name="broker watch")
        log.info(f"{title} started", extra=started)
        try:
            yield
        finally:
            stop.set()  # graceful: the loop finishes what it holds, then returns
            await asyncio.gather(task, watch, return_exceptions=True)

    def health() -> probes.Answer:
        if supervised.crashed is not None:
            return probes.not_alive("loop crashed", error=supervised.crashed)
        return probes.alive(restarts=supervised.restarts)

    async def readiness() -> probes.Answer:
        if supervised.ready and broker.reachable:
            return probes.ready()
        return probes.not_ready(
            loop_ready=supervised.ready,
            kafka="answers" if broker.reachable else broker.last_error,
        )

    app = FastAPI(title=title, lifespan=lifespan)
    app.state.supervised = supervised
    app.state.fatal = None
    app.include_router(
        probes.fastapi_router(probes.Probes(health, readiness, probes.render_with(render_metrics)))
    )
    return app
