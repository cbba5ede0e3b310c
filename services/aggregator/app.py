"""Builds the aggregator's Faust app: broker, RocksDB store, the posts table and its agent,
the pages; and runs its worker."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import cast

import faust
import faust.web
from aiohttp import web as aioweb

from services.aggregator import faust_patches
from services.aggregator.api import (
    AggregatesApi,
    ApiError,
    errors_middleware,
    register_pages,
    serve_internal,
)
from services.aggregator.business_metrics import LabelLimits
from services.aggregator.config import AggregatorSettings
from services.aggregator.metrics import AGGREGATE_KEYS, LIVE_ANSWERS, METRICS, POSTS
from services.aggregator.tables import Aggregator
from shared import probes
from shared.broker_watch import BrokerWatch

log = logging.getLogger("pinpipe.aggregator")


def create_app(settings: AggregatorSettings) -> tuple[faust.App, Aggregator]:
    settings.aggregator_datadir.mkdir(parents=True, exist_ok=True)
    kafka = settings.kafka_connection()
    app = faust.App(
        settings.aggregator_app_id,
        broker=kafka.faust_broker(),
        broker_credentials=kafka.faust_credentials(),
        store="rocksdb://",  # through rocksdict
        datadir=str(settings.aggregator_datadir),
        # the public port: pinpipe's routes only, errors in the API's format; none of Faust's
        # own pages (these settings, and patch 3 of faust_patches.py for its index page)
        web_enabled=True,
        web_host=settings.aggregator_host,
        web_port=settings.aggregator_port,
        web_bind=settings.aggregator_host,
        web_application_options={
            "middlewares": [errors_middleware],
            "client_max_size": 64 * 1024,  # no route takes a body
        },
        web_router_enabled=False,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        # what each member of the group advertises to the others: its internal port (api.py)
        canonical_url=settings.internal_url,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        topic_allow_declare=True,
        processing_guarantee="at_least_once",  # exact by idempotence: see tables.py
        producer_acks=-1,
        # changelog writes batched for 20 ms, not sent one request each (Faust's default):
        # 2,700 → 4,500 events/s in bench.aggregator_bench; answers do not wait for it
        producer_linger=0.02,
        Monitor=faust_patches.LeanMonitor,  # patch 7 of faust_patches.py
        consumer_auto_offset_reset="earliest",
        broker_commit_every=10_000,
        # a replica killed without leaving the group is noticed after 10 s, not Faust's 60 s
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=1.0,
        table_standby_replicas=settings.aggregator_standby_replicas,
        table_key_serializer="raw",  # the post's ind, as the clean topics' key
        table_value_serializer="raw",  # a post as JSON, encoded by orjson (tables.py)
        autodiscover=False,
    )
    aggregator = Aggregator(
        app,
        settings.topic_partitions,
        settings.aggregator_window_bucket_seconds,
        settings.rocksdb_options(),
    )
    api = AggregatesApi(
        app,
        aggregator,
        settings.internal_url,
        settings.aggregator_window_retention_seconds,
        settings.aggregator_peer_timeout_seconds,
    )
    register_pages(app, api)
    broker = BrokerWatch(kafka)

    @app.task  # type: ignore[untyped-decorator]  # Faust's decorators are untyped
    async def watch_broker() -> None:  # cancelled when the worker stops
        await broker.run(asyncio.Event())

    @app.task  # type: ignore[untyped-decorator]  # Faust's decorators are untyped
    async def internal_port() -> None:  # cancelled when the worker stops
        try:
            await serve_internal(api, settings.aggregator_host, settings.internal_port)
        except OSError as exc:  # the port is taken: the other replicas cannot gather here
            aggregator.crashed = f"internal port {settings.internal_port}: {exc!r}"
            log.error("the internal port cannot be served; stopping the worker", exc_info=exc)
            os.kill(os.getpid(), signal.SIGTERM)  # then started again in place (main.py)

    limits = LabelLimits(
        settings.aggregator_metric_top_countries, settings.aggregator_metric_top_categories
    )
    _add_probes(app, aggregator, api, broker, limits)
    faust_patches.no_builtin_pages(app)
    faust_patches.drain_changelog_before_commits(app)
    faust_patches.gaps_without_the_next_record(app)
    faust_patches.deliveries_share_their_waiters(app)
    faust_patches.short_fetch_waits(app)
    return app, aggregator


def _add_probes(
    app: faust.App,
    aggregator: Aggregator,
    api: AggregatesApi,
    broker: BrokerWatch,
    limits: LabelLimits,
) -> None:
    """The probes of shared/probes.py as Faust pages: ``/healthz`` (alive: 503 once the agent
    crashed, until the worker is restarted), ``/readyz`` (tables recovered, aggregates rebuilt,
    not rebalancing, the broker answers) and ``/metrics`` (with the live answers of
    business_metrics.py)."""

    def health() -> probes.Answer:
        if aggregator.crashed is not None:
            return probes.not_alive("agent crashed", error=aggregator.crashed)
        return probes.alive()

    async def readiness() -> probes.Answer:
        if aggregator.ready and broker.reachable:
            return probes.ready()
        return probes.not_ready(
            recovered=aggregator.recovered,
            rebalancing=app.rebalancing,
            kafka="answers" if broker.reachable else broker.last_error,
        )

    async def metrics() -> bytes:
        AGGREGATE_KEYS.set(aggregator.aggregates.size())
        POSTS.set(len(aggregator.cache))
        aggregator.update_lag()
        try:
            gathered = await api.gather()
        except ApiError:
            LIVE_ANSWERS.update(None, aggregator.aggregates.bucket_seconds)
        else:
            LIVE_ANSWERS.update(gathered.counts, aggregator.aggregates.bucket_seconds, limits)
        return METRICS.render()

    for path, handler in probes.aiohttp_handlers(probes.Probes(health, readiness, metrics)).items():
        _page(app, path, handler)


def _page(app: faust.App, path: str, handler: probes.AiohttpHandler) -> None:
    """Serve an aiohttp handler as a Faust page (Faust's web driver is aiohttp)."""

    @app.page(path)
    async def page(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        # Faust's aiohttp driver passes aiohttp's request and sends aiohttp's response
        response = await handler(cast(aioweb.Request, request))
        return cast(faust.web.Response, response)


def run_worker(app: faust.App, log_level: str) -> int:
    """Run the worker in the foreground until SIGINT/SIGTERM; its exit code."""
    worker = faust_patches.JsonLogsWorker(
        app, log_level=log_level, redirect_stdouts=False, quiet=True
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0
