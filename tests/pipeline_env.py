"""The environment of a whole local pipeline on ports of its own (`pinpipe up` in a folder of
a test's or a benchmark's): the broker, the lake on an S3 server, the source database, and a
port for each service; the emulator posts to this pipeline's ingest API."""

from __future__ import annotations

import os
from pathlib import Path

from tests.servers import REPO_ROOT

PORT_VARIABLES = {
    "ingest-api": "PINPIPE_INGEST_PORT",
    "aggregator": "PINPIPE_AGGREGATOR_PORT",
    "cleaner": "PINPIPE_CLEANER_PORT",
    "s3-sink": "PINPIPE_S3_SINK_PORT",
    "emulator": "PINPIPE_EMULATOR_PORT",
}


def pipeline_env(
    folder: Path,
    bootstrap: str,
    ports: dict[str, int],
    lake_url: str,
    s3_endpoint: str,
    s3_keys: tuple[str, str],
) -> dict[str, str]:
    """``ports``: one per name of PORT_VARIABLES; the source database is ``folder/source.db``."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PINPIPE_LAKE_URL": lake_url,
        "PINPIPE_S3_ENDPOINT_URL": s3_endpoint,
        "PINPIPE_S3_ACCESS_KEY_ID": s3_keys[0],
        "PINPIPE_S3_SECRET_ACCESS_KEY": s3_keys[1],
        "PINPIPE_SOURCE_DB_URL": f"sqlite:///{folder / 'source.db'}",
        "PINPIPE_EMULATOR_API_URL": f"http://127.0.0.1:{ports['ingest-api']}",
        **{variable: str(ports[name]) for name, variable in PORT_VARIABLES.items()},
    }
