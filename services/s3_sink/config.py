"""Settings of the S3 sink: the only place it reads the environment."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from shared.settings import PinpipeSettings
from shared.topics import CLEAN_TOPIC_PATTERN, RAW_TOPIC_PATTERN


class SinkSettings(PinpipeSettings):
    sink_group_id: str = "pinpipe-s3-sink"
    sink_host: str = "127.0.0.1"
    sink_port: int = 8003
    sink_roll_bytes: int = 32 * 1024 * 1024  # roll a partition's file at this many bytes
    sink_roll_seconds: float = 60.0  # … or when its records span this much record time
    sink_max_open_seconds: Annotated[float, Field(gt=0, le=120)] = 60.0  # … or when open this long
    sink_compression: str = "zstd"
    sink_clean_topic_pattern: str = CLEAN_TOPIC_PATTERN  # topics written to the clean zone
    sink_raw_topic_pattern: str = RAW_TOPIC_PATTERN  # topics written to the raw zone; "" = none
