"""No service dies because a dependency is away: each one started while Kafka (or, for the
emulator, the ingest API and the source database) cannot be reached stays up, answers
``/healthz`` 200 and ``/readyz`` 503, retries with backoff (a log line each attempt), and
becomes ready by itself once the dependency is there; the same through an outage in mid-run.
With ``PINPIPE_GIVE_UP_AFTER_SECONDS`` a service stops instead, non-zero, and says why.

Brokers here listen below the ephemeral port range (see tests/e2e/test_chaos.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from services.emulator.config import EmulatorSettings
from services.emulator.main import seed_db
from tests.conftest import wait_until
from tests.servers import REPO_ROOT, KafkaServer, free_port
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration
OUTAGE_SECONDS = 60.0
PREFIX = "waits"


@dataclass
class Service:
    """``pinpipe <command>`` in a process of its own, not waited for."""

    command: list[str]
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def launch(cls, command: list[str], env: dict[str, str], port: int, log: Path) -> Service:
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", *command],
                cwd=REPO_ROOT,
                env={**env, "PYTHONPATH": str(REPO_ROOT)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return cls(command, port, log, process)

    def answer(self, path: str) -> int | None:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=2).status_code
        except httpx.HTTPError:
            return None

    def retries_logged(self, what: str) -> int:
        """Attempts the service logged as failed while waiting for ``what``."""
        attempts = 0
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and what in line and "retrying" in line:
                attempts = max(attempts, int(json.loads(line).get("attempt", 0)))
        return attempts

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def services(tmp_path: Path, unique: str) -> Iterator[tuple[dict[str, Service], KafkaServer]]:
    """The four Kafka services, started before their broker exists (it is not started)."""
    broker = KafkaServer(free_port((0, 1), start=19600), tmp_path / "kafka")
    ports = {name: free_port(start=16000 + 100 * i) for i, name in enumerate(_PORT_VARIABLES)}
    env = {
        **os.environ,
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "PINPIPE_TOPIC_PREFIX": PREFIX,  # the broker is the test's own
        "PINPIPE_TOPIC_PARTITIONS": "2",
        "PINPIPE_LAKE_URL": f"file://{tmp_path / 'lake'}",
        "PINPIPE_AGGREGATOR_DATADIR": str(tmp_path / "faust"),
        "PINPIPE_RETRY_MAX_BACKOFF_SECONDS": "2",
        **{variable: str(ports[name]) for name, variable in _PORT_VARIABLES.items()},
    }
    started = {
        name: Service.launch([name], env, ports[name], tmp_path / f"{name}.log")
        for name in _PORT_VARIABLES
    }
    try:
        yield started, broker
    finally:
        for service in started.values():
            service.stop()
        for service in started.values():
            print(f"--- {service.log.name}\n" + service.log.read_text(errors="replace")[-2000:])
        broker.stop()


_PORT_VARIABLES = {
    "ingest-api": "PINPIPE_INGEST_PORT",
    "cleaner": "PINPIPE_CLEANER_PORT",
    "aggregator": "PINPIPE_AGGREGATOR_PORT",
    "s3-sink": "PINPIPE_S3_SINK_PORT",
}


def _all(services: dict[str, Service], path: str, status: int) -> bool:
    return all(s.answer(path) == status for s in services.values())


def test_services_wait_for_kafka_at_start_and_through_an_outage(
    services: tuple[dict[str, Service], KafkaServer],
) -> None:
    running, broker = services
    # Each has failed to reach the broker at least twice and waits: alive, not ready.
    wait_until(
        lambda: all(s.retries_logged("kafka") >= 2 for s in running.values()),
        timeout=60,
        what="every service retrying Kafka",
    )
    assert all(s.process.poll() is None for s in running.values())
    assert _all(running, "/healthz", 200) and _all(running, "/readyz", 503)

    broker.start()
    wait_until(lambda: _all(running, "/readyz", 200), timeout=120, what="every service ready")

    # The broker goes away in mid-run for a minute: nobody exits, nobody is ready.
    pid = int((broker.state_dir / "kafka.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: _all(running, "/readyz", 503), timeout=60, what="every service not ready")
    gone_at = time.monotonic()

    def outage_held() -> bool:
        exited = {
            n: s.process.returncode for n, s in running.items() if s.process.poll() is not None
        }
        assert not exited, f"exited during the outage: {exited}"
        return time.monotonic() - gone_at >= OUTAGE_SECONDS

    wait_until(outage_held, timeout=OUTAGE_SECONDS + 10, interval=1, what="the outage's end")
    assert _all(running, "/healthz", 200) and _all(running, "/readyz", 503)
    (broker.state_dir / "kafka.pid").unlink()
    broker.start()
    wait_until(lambda: _all(running, "/readyz", 200), timeout=120, what="every service ready again")

    # And the flow works again: a record posted now is cleaned and counted live.
    ingest = f"http://127.0.0.1:{running['ingest-api'].port}"
    response = httpx.post(
        f"{ingest}/topics/{PREFIX}.pin",
        json={"records": [{"value": {"index": 7, "category": "art", "follower_count": "3k"}}]},
        headers={"Content-Type": "application/vnd.kafka.json.v2+json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    cleaner = f"http://127.0.0.1:{running['cleaner'].port}/metrics"
    wait_until(
        lambda: 'pinpipe_cleaner_records_out_total{type="pin"} 1.0' in httpx.get(cleaner).text,
        timeout=60,
        what="the record cleaned after the outage",
    )


@pytest.mark.parametrize("command", ["cleaner", "aggregator"])
def test_a_service_gives_up_when_told_to_and_says_why(
    command: str, tmp_path: Path, unique: str
) -> None:
    port = free_port(start=16500)
    env = {
        **os.environ,
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port(start=19700)}",  # nobody
        "PINPIPE_GIVE_UP_AFTER_SECONDS": "3",
        "PINPIPE_RETRY_MAX_BACKOFF_SECONDS": "1",
        "PINPIPE_AGGREGATOR_DATADIR": str(tmp_path / "faust"),
        _PORT_VARIABLES[command]: str(port),
    }
    service = Service.launch([command], env, port, tmp_path / "service.log")
    try:
        code = service.process.wait(timeout=60)
    finally:
        service.stop()
    log = service.log.read_text()
    assert code == 3, log[-3000:]
    assert "still failing after" in log and "PINPIPE_GIVE_UP_AFTER_SECONDS=3" in log


def test_the_emulator_waits_for_its_database_and_the_ingest_api(
    tmp_path: Path, postgres_url: str, kafka_bootstrap: str, unique: str
) -> None:
    # Its own database on the test run's PostgreSQL, reached through a proxy we can close.
    database = f"emulator_{unique}"
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    direct = postgres_url.rsplit("/", 1)[0] + f"/{database}"
    seed_db(EmulatorSettings(), direct, 50, 3, None)
    upstream = sqlalchemy.engine.make_url(direct)
    proxy = TcpProxy(free_port(start=16600), "127.0.0.1", int(upstream.port or 5432))
    api_port, metrics_port = free_port(start=16700), free_port(start=16800)
    env = {
        **os.environ,
        "PINPIPE_SOURCE_DB_URL": str(upstream.set(port=proxy.port).render_as_string(False)),
        "PINPIPE_EMULATOR_API_URL": f"http://127.0.0.1:{api_port}",
        "PINPIPE_EMULATOR_PORT": str(metrics_port),
        "PINPIPE_EMULATOR_MODE": "both",
        "PINPIPE_EMULATOR_RATE": "20",
        "PINPIPE_RETRY_MAX_BACKOFF_SECONDS": "1",
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PINPIPE_TOPIC_PREFIX": f"e{unique}",
        "PINPIPE_INGEST_PORT": str(api_port),
    }
    emulator = Service.launch(["emulator", "run"], env, metrics_port, tmp_path / "emulator.log")
    api: Service | None = None
    try:
        # The ingest API is not there: it waits for the API before it reads a row.
        wait_until(
            lambda: emulator.retries_logged("the ingest API") >= 2,
            timeout=60,
            what="the emulator retrying the ingest API",
        )
        assert emulator.answer("/healthz") == 200 and emulator.answer("/readyz") == 503
        api = Service.launch(["ingest-api"], env, api_port, tmp_path / "api.log")
        # Then the database is away (the proxy does not listen): it waits for it.
        wait_until(
            lambda: emulator.retries_logged("the source database") >= 2,
            timeout=60,
            what="the emulator retrying the source database",
        )
        assert emulator.process.poll() is None
        proxy.start()
        metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_until(lambda: _posted(metrics) >= 20, timeout=120, what="20 posts through the API")
        assert emulator.answer("/readyz") == 200
    finally:
        emulator.stop()
        if api is not None:
            api.stop()
        proxy.stop()
        print(emulator.log.read_text(errors="replace")[-3000:])
    assert emulator.process.returncode == 0


def _posted(metrics_url: str) -> float:
    for line in httpx.get(metrics_url, timeout=5).text.splitlines():
        if line.startswith('pinpipe_emulator_posts_total{status="ok"}'):
            return float(line.split()[-1])
    return 0.0
