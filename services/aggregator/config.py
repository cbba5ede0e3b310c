"""Settings of the aggregator: the only place it reads the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.settings import DEFAULT_VAR_DIR, PinpipeSettings


class AggregatorSettings(PinpipeSettings):
    aggregator_app_id: str = "pinpipe-aggregator"
    aggregator_host: str = "127.0.0.1"
    aggregator_port: int = 8001
    # The replicas' own port (``GET /internal/aggregates``, one replica's partial state), apart
    # from the public one: default the web port + 10 (8011), so that replicas sharing a host
    # never share it. Only members of the consumer group are answered there.
    aggregator_internal_port: int | None = None
    # the URL other replicas reach this one's internal port at, advertised to them through the
    # consumer group (Faust's canonical URL; default http://<web host>:<internal port>)
    aggregator_internal_url: str | None = None
    aggregator_datadir: Path = (DEFAULT_VAR_DIR / "faust" / "aggregator").resolve()
    aggregator_standby_replicas: int = 0
    # rolling windows: bucket width, and how far back ?window=<N>m may reach
    aggregator_window_bucket_seconds: int = 60
    aggregator_window_retention_seconds: int = 3600
    aggregator_peer_timeout_seconds: float = 5.0
    # the live gauges' labels from data (business_metrics.py): the top N countries and
    # categories by posts keep their own series, the others are summed into "(other)"
    aggregator_metric_top_countries: int = Field(default=30, ge=1, le=500)
    aggregator_metric_top_categories: int = Field(default=20, ge=1, le=500)
    # The posts table's RocksDB memory, per table partition. Faust's defaults (three memtables
    # of 64 MiB, a 2 GiB block cache) let a replica grow towards a gigabyte under a steady
    # write load: a memtable's memory grows with every write until it is flushed (seen in the
    # soak, ~2 MB a minute at 50 posts/s). A post is a few hundred bytes: 2 MiB memtables
    # flush every few minutes and keep a replica's table memory under 50 MiB.
    aggregator_rocksdb_write_buffer_bytes: int = 2 * 1024 * 1024
    aggregator_rocksdb_block_cache_bytes: int = 8 * 1024 * 1024

    def rocksdb_options(self) -> dict[str, int]:
        """Faust's RocksDB store options for the posts table."""
        return {
            "write_buffer_size": self.aggregator_rocksdb_write_buffer_bytes,
            "max_write_buffer_number": 2,
            "block_cache_size": self.aggregator_rocksdb_block_cache_bytes,
            "block_cache_compressed_size": self.aggregator_rocksdb_block_cache_bytes,
        }

    @property
    def internal_port(self) -> int:
        if self.aggregator_internal_port is not None:
            return self.aggregator_internal_port
        return self.aggregator_port + 10

    @property
    def internal_url(self) -> str:
        """The URL this replica advertises to the others (its internal port)."""
        return self.aggregator_internal_url or (
            f"http://{self.aggregator_host}:{self.internal_port}"
        )
