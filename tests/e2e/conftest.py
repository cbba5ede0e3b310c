"""The whole pipeline, started as a user starts it: ``pinpipe up --detach --observe`` on a
broker of the test's own (the clean topics are global, and each test counts all of what they
hold), a lake in the real S3 server, and Debian's Prometheus scraping every service.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipeline_env import PORT_VARIABLES, pipeline_env
from tests.servers import REPO_ROOT, KafkaServer, S3Server, free_port


@pytest.fixture
def pipeline(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, unique: str
) -> Iterator[dict[str, str]]:
    prefix = f"e2e{unique}"
    ports = {name: free_port(start=23000 + 100 * i) for i, name in enumerate(PORT_VARIABLES)}
    prometheus_port = free_port(start=23500)
    broker = KafkaServer(free_port((0, 1), start=22092), tmp_path / "kafka")
    broker.start()
    env = {
        **pipeline_env(
            tmp_path,
            broker.bootstrap,
            ports,
            f"s3://{s3_bucket}/lake",
            s3_server.endpoint,
            (s3_server.access_key, s3_server.secret_key),
        ),
        "PINPIPE_TOPIC_PREFIX": prefix,
        "PINPIPE_CLEANER_APP_ID": f"cleaner-{unique}",
        "PINPIPE_AGGREGATOR_APP_ID": f"aggregator-{unique}",
        "PINPIPE_S3_SINK_GROUP_ID": f"sink-{unique}",
        "PINPIPE_S3_SINK_MAX_OPEN_SECONDS": "2",
        # Only this test's raw topics: the broker is shared with other tests.
        "PINPIPE_CLEANER_RAW_TOPIC_PATTERN": rf"^{prefix}\.(pin|geo|user)$",
        "PINPIPE_S3_SINK_RAW_TOPIC_PATTERN": rf"^{prefix}\.(pin|geo|user)$",
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
            str(prometheus_port),
        )
        assert f"http://127.0.0.1:{ports['aggregator']}/aggregates/posts-per-country" in up
        pinpipe("emulator", "seed-db", "--rows", "300", "--seed", "7")
        yield {
            "tmp": str(tmp_path),
            "aggregates": f"http://127.0.0.1:{ports['aggregator']}",
            "prometheus": f"http://127.0.0.1:{prometheus_port}",
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
