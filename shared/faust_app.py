"""The one way pinpipe builds a Faust app, so the cleaner and aggregator agree on broker
URL form, storage, partitions and delivery settings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import faust
import faust.web

from shared.logs import configure_logging
from shared.metrics import CONTENT_TYPE


def broker_url(bootstrap_servers: str) -> str:
    """``host1:9092,host2:9092`` → ``kafka://host1:9092;kafka://host2:9092``."""
    return ";".join(
        f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server.strip()
    )


def create_faust_app(
    app_id: str,
    *,
    bootstrap_servers: str,
    web_host: str,
    web_port: int,
    datadir: Path,
    partitions: int,
    processing_guarantee: str = "at_least_once",
) -> faust.App:
    datadir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=broker_url(bootstrap_servers),
        store="memory://",
        datadir=str(datadir),
        web_enabled=True,
        web_host=web_host,
        web_port=web_port,
        web_bind=web_host,
        topic_partitions=partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        processing_guarantee=processing_guarantee,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=100,
        broker_commit_interval=1.0,
        table_standby_replicas=0,
        autodiscover=False,
    )


def add_service_pages(app: faust.App, render_metrics: Callable[[], bytes]) -> None:
    """``/metrics``, ``/healthz`` (alive) and ``/readyz`` (started, not rebalancing)."""

    @app.page("/metrics")
    async def metrics(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        # aiohttp refuses a charset inside content_type
        return web.bytes(
            render_metrics(), content_type=CONTENT_TYPE.split(";")[0] + "; version=0.0.4"
        )

    @app.page("/healthz")
    async def healthz(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        ready = app.consumer.started if app.consumer else False
        if ready and not app.rebalancing:
            return web.json({"status": "ready"})
        return web.json({"status": "not ready", "rebalancing": app.rebalancing}, status=503)


class _Worker(faust.Worker):
    """A Faust worker whose logs are pinpipe's JSON lines."""

    service_name = "faust"
    service_log_level = "INFO"

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        configure_logging(self.service_name, self.service_log_level)


def run_worker(app: faust.App, service: str, log_level: str) -> None:
    """Run a Faust app's worker in the foreground until SIGINT/SIGTERM."""
    worker_class = type(
        f"{service}_worker",
        (_Worker,),
        {
            "service_name": service,
            "service_log_level": log_level,
        },
    )
    worker = worker_class(app, loglevel=log_level.lower(), redirect_stdouts=False, quiet=True)
    worker.execute_from_commandline()
