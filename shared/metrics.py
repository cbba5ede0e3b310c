"""Prometheus helpers: metric names of DESIGN.md (``pinpipe_<service>_<what>_<unit>``).

Each service declares all of its metrics together in one ``metrics.py`` through
:class:`ServiceMetrics`, on its own registry, and serves :func:`render` on ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """Factory of one service's metrics, prefixed ``pinpipe_<service>_``."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.prefix = f"pinpipe_{service}_"
        self.registry = registry or CollectorRegistry(auto_describe=True)

    def counter(self, what: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        if not what.endswith("_total"):
            raise ValueError(f"counter names end in _total: {what}")
        # prometheus_client appends _total itself; give it the bare name.
        return Counter(self.prefix + what[: -len("_total")], doc, labels, registry=self.registry)

    def gauge(self, what: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(self.prefix + what, doc, labels, registry=self.registry)

    def histogram(
        self,
        what: str,
        doc: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
    ) -> Histogram:
        return Histogram(self.prefix + what, doc, labels, registry=self.registry, buckets=buckets)

    def render(self) -> bytes:
        """The Prometheus text exposition of this service's registry."""
        return generate_latest(self.registry)
