"""Whether the Kafka broker answers, for ``/readyz``: a metadata request every few seconds.

A consumer or producer that loses its broker keeps retrying quietly inside aiokafka (and
Faust), so a service would look ready through an outage of minutes. A :class:`BrokerWatch`
asks for the cluster's metadata every ``interval`` seconds on a client of its own; ``/readyz``
is 503 while the last request failed, and 200 again after the first one that answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka.client import AIOKafkaClient

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 2.0
TIMEOUT_SECONDS = 5.0


class BrokerWatch:
    def __init__(self, bootstrap_servers: str, interval: float = INTERVAL_SECONDS) -> None:
        self.bootstrap_servers = bootstrap_servers
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
                            bootstrap_servers=self.bootstrap_servers,
                            client_id="pinpipe-broker-watch",
                        )
                        await asyncio.wait_for(client.bootstrap(), TIMEOUT_SECONDS)
                    await asyncio.wait_for(client.fetch_all_metadata(), TIMEOUT_SECONDS)
                    self._seen(True, "")
                except Exception as exc:
                    self._seen(False, repr(exc))
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
