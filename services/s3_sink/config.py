"""Settings of the S3 sink: the only place it reads the environment.

The S3 sink is named for the original project's (``services/s3_sink``, ``pinpipe s3-sink``,
``PINPIPE_S3_SINK_*``, metrics ``pinpipe_s3_sink_*``, the Deployment ``s3-sink``); it writes
wherever ``PINPIPE_LAKE_URL`` points: ``s3://`` in production, ``file://`` on a laptop."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from shared.lake_tables import DEFAULT_COMPRESSION, Compression
from shared.settings import PinpipeSettings
from shared.topics import CLEAN_TOPIC_PATTERN, RAW_TOPIC_PATTERN, SINK_GROUP_ID


class S3SinkSettings(PinpipeSettings):
    s3_sink_group_id: str = SINK_GROUP_ID
    s3_sink_host: str = "127.0.0.1"
    s3_sink_port: int = 8003
    s3_sink_roll_bytes: int = 32 * 1024 * 1024  # roll a partition's file at this many bytes
    s3_sink_roll_seconds: float = 60.0  # … or when its records span this much record time
    # … or when open this long
    s3_sink_max_open_seconds: Annotated[float, Field(gt=0, le=120)] = 60.0
    s3_sink_compression: Compression = DEFAULT_COMPRESSION
    s3_sink_clean_topic_pattern: str = CLEAN_TOPIC_PATTERN  # topics written to the clean zone
    s3_sink_raw_topic_pattern: str = RAW_TOPIC_PATTERN  # topics written to the raw zone; "" = none
