"""Settings of the ingest API: the only place it reads the environment."""

from __future__ import annotations

from pydantic import SecretStr, model_validator

from shared.settings import PinpipeSettings
from shared.topics import RAW_TOPIC_PATTERN


class IngestSettings(PinpipeSettings):
    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8000
    ingest_max_body_bytes: int = 10 * 1024 * 1024
    ingest_max_records: int = 10_000  # records per POST /topics request
    ingest_topic_pattern: str = RAW_TOPIC_PATTERN  # topics POST /topics may write to
    # API keys, comma-separated. Producers' keys open the data routes; admin keys open those
    # and CreateStream/DeleteStream. With no key at all every route is open (local use only).
    ingest_api_keys: SecretStr = SecretStr("")
    ingest_admin_api_keys: SecretStr = SecretStr("")
    ingest_require_api_keys: bool = False  # refuse to start without producers' keys (Kubernetes)
    ingest_max_shards: int = 64  # CreateStream's ShardCount limit
    ingest_max_streams: int = 50  # streams CreateStream may have made at one time
    # load shedding: beyond either, a request is answered 503 with Retry-After at once
    ingest_max_concurrent_requests: int = 128
    ingest_max_inflight_bytes: int = 32 * 1024 * 1024  # request bodies being read or produced
    ingest_create_raw_topics: bool = True  # declare <prefix>.pin|geo|user etc. at start-up
    ingest_metadata_max_age_seconds: float = 1.0  # min gap between refreshes for unknown topics
    ingest_linger_ms: int = 2  # producer batching delay
    ingest_produce_timeout_ms: int = 15_000  # a record not acknowledged by then is an error

    def api_keys(self) -> frozenset[str]:
        """The producers' keys."""
        return _keys(self.ingest_api_keys)

    def admin_api_keys(self) -> frozenset[str]:
        return _keys(self.ingest_admin_api_keys)

    @model_validator(mode="after")
    def _keys_make_sense(self) -> IngestSettings:
        if self.api_keys() & self.admin_api_keys():
            raise ValueError(
                "PINPIPE_INGEST_ADMIN_API_KEYS must differ from PINPIPE_INGEST_API_KEYS: "
                "a producer's key must not administer streams"
            )
        if self.ingest_require_api_keys and not self.api_keys():
            raise ValueError(
                "PINPIPE_INGEST_REQUIRE_API_KEYS is set but PINPIPE_INGEST_API_KEYS is empty: "
                "give the producers' keys (in Kubernetes, the pinpipe-ingest Secret)"
            )
        return self


def _keys(value: SecretStr) -> frozenset[str]:
    return frozenset(k.strip() for k in value.get_secret_value().split(",") if k.strip())
