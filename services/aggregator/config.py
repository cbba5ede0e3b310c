"""Settings of the aggregator: the only place it reads the environment."""

from __future__ import annotations

from pathlib import Path

from shared.settings import DEFAULT_VAR_DIR, PinpipeSettings


class AggregatorSettings(PinpipeSettings):
    aggregator_app_id: str = "pinpipe-aggregator"
    aggregator_web_host: str = "127.0.0.1"
    aggregator_web_port: int = 8001
    aggregator_datadir: Path = (DEFAULT_VAR_DIR / "faust" / "aggregator").resolve()
