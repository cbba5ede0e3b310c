"""The whole pipeline, started as a user starts it: ``pinpipe up --detach --observe`` on a
broker of the test's own (the clean topics are global, and each test counts all of what they
hold), a lake in the real S3 server, and Debian's Prometheus scraping every service.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import REPO_ROOT, KafkaServer, S3Server, free_port


@pytest.fixture
def pipeline(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, unique: str
) -> Iterator[dict[str, str]]:
    prefix = f"e2e{unique}"
    ports = {
        name: free_port(start=start)
        for name, start in (
            ("ingest", 23000),
            ("aggregator", 23100),
            ("cleaner", 23200),
            ("sink", 23300),
            ("emulator", 23400),
            ("prometheus", 23500),
        )
    }
    broker = KafkaServer(free_port((0, 1), start=33092), tmp_path / "kafka")
    broker.start()
    env = {
        **os.environ,
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "PINPIPE_TOPIC_PREFIX": prefix,
        "PINPIPE_LAKE_URL": f"s3://{s3_bucket}/lake",
        "PINPIPE_S3_ENDPOINT_URL": s3_server.endpoint,
        "PINPIPE_S3_ACCESS_KEY_ID": s3_server.access_key,
        "PINPIPE_S3_SECRET_ACCESS_KEY": s3_server.secret_key,
        "PINPIPE_SOURCE_DB_URL": f"sqlite:///{tmp_path / 'source.db'}",
        "PINPIPE_INGEST_PORT": str(ports["ingest"]),
        "PINPIPE_EMULATOR_API_URL": f"http://127.0.0.1:{ports['ingest']}",
        "PINPIPE_AGGREGATOR_WEB_PORT": str(ports["aggregator"]),
        "PINPIPE_CLEANER_WEB_PORT": str(ports["cleaner"]),
        "PINPIPE_SINK_PORT": str(ports["sink"]),
        "PINPIPE_EMULATOR_METRICS_PORT": str(ports["emulator"]),
        "PINPIPE_CLEANER_APP_ID": f"cleaner-{unique}",
        "PINPIPE_AGGREGATOR_APP_ID": f"aggregator-{unique}",
        "PINPIPE_SINK_GROUP_ID": f"sink-{unique}",
        "PINPIPE_SINK_MAX_OPEN_SECONDS": "2",
        # Only this test's raw topics: the broker is shared with other tests.
        "PINPIPE_CLEANER_RAW_TOPIC_PATTERN": rf"^{prefix}\.(pin|geo|user)$",
        "PINPIPE_SINK_RAW_TOPIC_PATTERN": rf"^{prefix}\.(pin|geo|user)$",
    }

    def pinpipe(*args: str, timeout: float = 180) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, (
            f"pinpipe {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
        return result.stdout

    try:
        up = pinpipe(
            "up",
            "--detach",
            "--no-kafka",
            "--no-emulator",
            "--observe",
            "--prometheus-port",
            str(ports["prometheus"]),
        )
        assert f"http://127.0.0.1:{ports['aggregator']}/aggregates/posts-per-country" in up
        pinpipe("emulator", "seed-db", "--rows", "300", "--seed", "7")
        yield {
            "tmp": str(tmp_path),
            "aggregates": f"http://127.0.0.1:{ports['aggregator']}",
            "prometheus": f"http://127.0.0.1:{ports['prometheus']}",
            **{k: v for k, v in env.items() if k.startswith("PINPIPE_")},
        }
    finally:
        subprocess.run(
            [sys.executable, "-m", "cli.main", "down"],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(REPO_ROOT)},
            timeout=120,
            check=False,
        )
        for log in sorted((tmp_path / "var" / "log").glob("*.log")):
            print(
                f"--- {log.name} (tail)\n"
                + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            )
        broker.stop()
