"""Settings of the aggregator: the only place it reads the environment."""

from __future__ import annotations

from pathlib import Path

from shared.settings import DEFAULT_VAR_DIR, PinpipeSettings


class AggregatorSettings(PinpipeSettings):
    aggregator_app_id: str = "pinpipe-aggregator"
    aggregator_web_host: str = "127.0.0.1"
    aggregator_web_port: int = 8001
    # the URL other replicas reach this one at (default http://<web host>:<web port>)
    aggregator_advertised_url: str | None = None
    aggregator_datadir: Path = (DEFAULT_VAR_DIR / "faust" / "aggregator").resolve()
    aggregator_standby_replicas: int = 0
    # rolling windows: bucket width, and how far back ?window=<N>m may reach
    aggregator_window_bucket_seconds: int = 60
    aggregator_window_retention_seconds: int = 3600
    aggregator_peer_timeout_seconds: float = 5.0

    @property
    def advertised_url(self) -> str:
        return self.aggregator_advertised_url or (
            f"http://{self.aggregator_web_host}:{self.aggregator_web_port}"
        )
