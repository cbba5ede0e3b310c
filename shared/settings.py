"""The settings base every service's ``config.py`` extends.

Environment variables carry the ``PINPIPE_`` prefix. Settings are frozen; secrets are
``SecretStr`` and :meth:`PinpipeSettings.redacted` gives a dump safe for the start-up log line.
Only services' ``config.py`` modules instantiate settings: nothing else reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.lake import Lake, open_lake
from shared.retry import Backoff

DEFAULT_VAR_DIR = Path("var")


class PinpipeSettings(BaseSettings):
    """What every service needs: the broker, the topic prefix, the lake, logging."""

    model_config = SettingsConfigDict(env_prefix="PINPIPE_", frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "pinterest"
    topic_partitions: int = 4
    topic_replication_factor: int = 1  # of the topics pinpipe creates (3 on a real cluster)
    lake_url: str = f"file://{(DEFAULT_VAR_DIR / 'lake').resolve()}"
    s3_endpoint_url: str | None = None
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    log_level: str = "INFO"
    # waiting out a dependency that is away (Kafka, S3, the source database, the ingest API)
    retry_max_backoff_seconds: float = 10.0  # the longest wait between two attempts
    give_up_after_seconds: float = 0.0  # stop (exit non-zero) after failing this long; 0: never

    @field_validator("lake_url")
    @classmethod
    def _lake_url_scheme(cls, value: str) -> str:
        if not (value.startswith("file://") or value.startswith("s3://")):
            raise ValueError("PINPIPE_LAKE_URL must start with file:// or s3://")
        return value.rstrip("/")

    def redacted(self) -> dict[str, Any]:
        """Every setting, secrets shown as '**********', for the start-up log line."""
        return {
            name: (str(value) if isinstance(value, SecretStr) else value)
            for name, value in self.model_dump().items()
        }

    def backoff(self) -> Backoff:
        """How this service waits for a dependency that is away (see shared/retry.py)."""
        return Backoff(
            first=min(0.5, self.retry_max_backoff_seconds),
            cap=self.retry_max_backoff_seconds,
            give_up_after=self.give_up_after_seconds or None,
        )

    def open_lake(self, url: str | None = None) -> Lake:
        """The lake of ``PINPIPE_LAKE_URL`` (or ``url``) with this configuration's S3 access."""
        return open_lake(
            url or self.lake_url,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_access_key_id=self.s3_access_key_id,
            s3_secret_access_key=self.s3_secret_access_key,
            s3_region=self.s3_region,
        )
