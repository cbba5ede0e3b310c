"""A broker (and an ingest API) of a benchmark's own: started on free loopback ports, stopped at
the end (the same scripts and commands as `make up`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = str(ROOT / "infra" / "kafka" / "kafka.sh")


def free_port(start: int, span: int = 0) -> int:
    """A port p such that p … p + span are free on 127.0.0.1."""
    for port in range(start, start + 2000, span + 1):
        try:
            for p in range(port, port + span + 1):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


@dataclass(frozen=True)
class LocalStack:
    bootstrap: str
    api_url: str
    state: Path


@contextmanager
def local_kafka(state: Path) -> Iterator[str]:
    """A single-node Kafka on a free loopback port, its data under ``state``; yields bootstrap."""
    kafka_port = free_port(39092, span=1)
    kafka_env = {
        **os.environ,
        "KAFKA_PORT": str(kafka_port),
        "KAFKA_STATE_DIR": str(state / "kafka"),
    }
    subprocess.run(["bash", KAFKA_SCRIPT, "start"], env=kafka_env, check=True)
    try:
        yield f"127.0.0.1:{kafka_port}"
    finally:
        subprocess.run(["bash", KAFKA_SCRIPT, "stop"], env=kafka_env, check=False)


@dataclass(frozen=True)
class LocalS3:
    endpoint: str
    access_key: str
    secret_key: str


@contextmanager
def local_s3(state: Path) -> Iterator[LocalS3]:
    """A SeaweedFS S3 server on free loopback ports, its data under ``state``."""
    port = free_port(38333, span=7)  # S3, filer, master, volume; their gRPC ports +4 … +7
    env = {**os.environ, "S3_PORT": str(port), "S3_STATE_DIR": str(state / "s3")}
    script = str(ROOT / "infra" / "s3" / "seaweedfs.sh")
    subprocess.run(["bash", script, "start"], env=env, check=True)
    try:
        yield LocalS3(f"http://127.0.0.1:{port}", "pinpipe", "pinpipe-secret")
    finally:
        subprocess.run(["bash", script, "stop"], env=env, check=False)


@contextmanager
def local_stack(prefix: str = "bench", partitions: int = 4) -> Iterator[LocalStack]:
    """Kafka plus one ingest API worker whose raw topics are ``<prefix>.*``."""
    state = Path(tempfile.mkdtemp(prefix="pinpipe-bench-"))
    with local_kafka(state) as bootstrap:
        api_port = free_port(38000)
        env = {
            **os.environ,
            "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PINPIPE_TOPIC_PREFIX": prefix,
            "PINPIPE_TOPIC_PARTITIONS": str(partitions),
            "PINPIPE_INGEST_PORT": str(api_port),
            "PINPIPE_LOG_LEVEL": "WARNING",
        }
        with open(state / "api.log", "wb") as api_log:
            api = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "ingest-api"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=api_log,
            )
            try:
                url = f"http://127.0.0.1:{api_port}"
                _wait_ready(url, api, state)
                yield LocalStack(bootstrap, url, state)
            finally:
                api.terminate()
                api.wait(timeout=30)


def _wait_ready(url: str, api: subprocess.Popen[bytes], state: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or api.poll() is not None:
            raise RuntimeError(f"ingest API did not start; see {state / 'api.log'}")
        time.sleep(0.2)
