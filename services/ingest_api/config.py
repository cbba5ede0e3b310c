"""Settings of the ingest API: the only place it reads the environment."""

from __future__ import annotations

from pydantic import SecretStr

from shared.settings import PinpipeSettings
from shared.topics import RAW_TOPIC_PATTERN


class IngestSettings(PinpipeSettings):
    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8000
    ingest_max_body_bytes: int = 10 * 1024 * 1024
    ingest_max_records: int = 10_000  # records per POST /topics request
    ingest_topic_pattern: str = RAW_TOPIC_PATTERN  # topics POST /topics may write to
    ingest_api_keys: SecretStr = SecretStr("")  # comma-separated; empty = no key required
    ingest_max_shards: int = 64  # CreateStream's ShardCount limit
    ingest_create_raw_topics: bool = True  # declare <prefix>.pin|geo|user etc. at start-up
    ingest_metadata_max_age_seconds: float = 1.0  # min gap between refreshes for unknown topics
    ingest_linger_ms: int = 2  # producer batching delay
    ingest_produce_timeout_ms: int = 15_000  # a record not acknowledged by then is an error

    def api_keys(self) -> frozenset[str]:
        return frozenset(
            k.strip() for k in self.ingest_api_keys.get_secret_value().split(",") if k.strip()
        )
