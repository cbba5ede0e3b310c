"""Settings of the ingest API: the only place it reads the environment."""

from __future__ import annotations

from shared.settings import PinpipeSettings


class IngestSettings(PinpipeSettings):
    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8000
    ingest_max_body_bytes: int = 10 * 1024 * 1024
    ingest_create_raw_topics: bool = True  # declare <prefix>.pin|geo|user etc. at start-up
    ingest_metadata_max_age_seconds: float = 1.0  # min gap between refreshes for unknown topics
