"""Whether the Kafka broker answers, for ``/readyz``: a metadata request every few seconds.

A consumer or producer that loses its broker keeps retrying quietly inside aiokafka (and
Faust), so a service would look ready through an outage of minutes. A :class:`BrokerWatch`
asks for the cluster's metadata every ``interval`` seconds on a client of its own; ``/readyz``
is 503 while the last request failed, and 200 again after the first one that answers. When
the broker cannot be reached, ``last_error`` says why (refused, TLS, authentication failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka.client import AIOKafkaClient
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError

from shared.kafka_security import KafkaConnection

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 2.0
TIMEOUT_SECONDS = 5.0


class BrokerWatch:
    def __init__(self, kafka: KafkaConnection, interval: float = INTERVAL_SECONDS) -> None:
        self.kafka = kafka
        self.bootstrap_servers = kafka.bootstrap_servers
        self.interval = interval
        self.reachable = False
        self.last_error = "not checked yet"
        self.checked_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Check until ``stop`` is set (a client is made anew after each failure)."""
        client: AIOKafkaClient | None = None
        try:
            while not stop.is_set():
                try:
                    if client is None:
                        client = AIOKafkaClient(
                            **self.kafka.client_kwargs(), client_id="pinpipe-broker-watch"
                        )
                        await asyncio.wait_for(client.bootstrap(), TIMEOUT_SECONDS)
                    await asyncio.wait_for(client.fetch_all_metadata(), TIMEOUT_SECONDS)
                    self._seen(True, "")
                except Exception as exc:
                    reason = repr(exc)
                    if isinstance(exc, KafkaConnectionError):  # "unable to bootstrap": why?
                        reason = await self._why_not() or reason
                    self._seen(False, reason)
                    if client is not None:
                        with contextlib.suppress(Exception):
                            await client.close()
                        client = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()

    async def _why_not(self) -> str | None:
        """Why the first bootstrap server refuses a connection (aiokafka's bootstrap error
        only says it failed): refused, a TLS error, authentication failed; None if it takes
        one now."""
        server = self.bootstrap_servers.split(",")[0].strip()
        host, _, port = server.rpartition(":")
        kwargs = self.kafka.client_kwargs()
        del kwargs["bootstrap_servers"]
        try:
            conn = await asyncio.wait_for(
                create_conn(host, int(port), client_id="pinpipe-broker-watch", **kwargs),
                TIMEOUT_SECONDS,
            )
        except Exception as exc:
            return f"{server}: {exc!r}"
        conn.close()
        return None

    def _seen(self, reachable: bool, error: str) -> None:
        if reachable != self.reachable:
            if reachable:
                log.info("kafka answers again", extra={"bootstrap": self.bootstrap_servers})
            else:
                log.warning(
                    "kafka does not answer",
                    extra={"bootstrap": self.bootstrap_servers, "error": error},
                )
        self.reachable, self.last_error = reachable, error
        self.checked_at = time.monotonic()
