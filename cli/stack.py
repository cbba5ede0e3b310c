"""The local stack behind ``pinpipe up`` / ``pinpipe down``: Kafka (infra/kafka/kafka.sh) and
the five services as child processes (and Prometheus with ``--observe``), logs under
``var/log``, pid files under ``var/run``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from cli.observe import DEFAULT_PORT as DEFAULT_PROMETHEUS_PORT
from cli.observe import prometheus_command
from services.aggregator.config import AggregatorSettings
from services.cleaner.config import CleanerSettings
from services.emulator.config import EmulatorSettings
from services.ingest_api.config import IngestSettings
from services.s3_sink.config import SinkSettings
from shared.settings import DEFAULT_VAR_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = REPO_ROOT / "infra" / "kafka" / "kafka.sh"
READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]  # pinpipe subcommand
    base_url: str
    ready_path: str
    urls: tuple[tuple[str, str], ...]  # (label, path) printed once ready
    program: list[str] | None = None  # not a pinpipe service: the command to run instead


def _base(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def _say(message: str, *, err: bool = False) -> None:
    """Print, never failing: a closed terminal or pipe must not stop a shutdown half-way."""
    try:
        print(message, file=sys.stderr if err else sys.stdout, flush=True)
    except OSError:
        pass


class _Stop(Exception):
    """SIGTERM or SIGHUP asked the foreground `pinpipe up` to stop."""


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


class Stack:
    def __init__(self, var_dir: Path, kafka_port: int, services: list[Service]) -> None:
        self.var_dir = var_dir
        self.log_dir = var_dir / "log"
        self.run_dir = var_dir / "run"
        self.kafka_port = kafka_port
        self.services = services
        self._ready: set[str] = set()

    @classmethod
    def from_environment(cls, prometheus_port: int = DEFAULT_PROMETHEUS_PORT) -> Stack:
        ingest, cleaner, aggregator = IngestSettings(), CleanerSettings(), AggregatorSettings()
        sink, emulator = SinkSettings(), EmulatorSettings()
        first_broker = ingest.kafka_bootstrap_servers.split(",")[0]
        services = [
            Service(
                "ingest-api",
                ["ingest-api"],
                _base(ingest.ingest_host, ingest.ingest_port),
                "/readyz",
                (("ingest API docs", "/docs"), ("ingest API metrics", "/metrics")),
            ),
            Service(
                "cleaner",
                ["cleaner"],
                _base(cleaner.cleaner_web_host, cleaner.cleaner_web_port),
                "/readyz",
                (("cleaner metrics", "/metrics"),),
            ),
            Service(
                "aggregator",
                ["aggregator"],
                _base(aggregator.aggregator_web_host, aggregator.aggregator_web_port),
                "/readyz",
                (
                    ("aggregates", "/aggregates/posts-per-country"),
                    ("aggregator metrics", "/metrics"),
                ),
            ),
            Service(
                "sink",
                ["sink"],
                _base(sink.sink_host, sink.sink_port),
                "/readyz",
                (("sink metrics", "/metrics"),),
            ),
            Service(
                "emulator",
                ["emulator", "run"],
                _base(emulator.emulator_metrics_host, emulator.emulator_metrics_port),
                "/readyz",
                (("emulator metrics", "/metrics"),),
            ),
            # started by `up --observe` only (its command is written then); `down` stops it
            Service(
                "prometheus",
                [],
                _base("127.0.0.1", prometheus_port),
                "/-/ready",
                (("prometheus", "/graph"), ("prometheus targets", "/targets")),
            ),
        ]
        return cls(DEFAULT_VAR_DIR.resolve(), int(first_broker.rsplit(":", 1)[1]), services)

    # -- Kafka ------------------------------------------------------------------------------
    def _kafka(self, action: str) -> None:
        env = {
            **os.environ,
            "KAFKA_PORT": str(self.kafka_port),
            "KAFKA_HOME": str(self.var_dir / "kafka"),
        }
        subprocess.run(["bash", str(KAFKA_SCRIPT), action], env=env, check=True)

    # -- processes --------------------------------------------------------------------------
    @property
    def _kafka_marker(self) -> Path:
        """Present while Kafka was started by `up` (and so is `down`'s to stop)."""
        return self.run_dir / "kafka.managed"

    def _pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _start(self, service: Service) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{service.name}.log", "ab")
        process = subprocess.Popen(
            service.program or [sys.executable, "-m", "cli.main", *service.command],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=os.getcwd(),
            start_new_session=True,
        )
        self._pidfile(service.name).write_text(str(process.pid))
        return process

    def _wait_ready(self, processes: dict[str, subprocess.Popen[bytes]]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        pending = {
            s.name: s for s in self.services if s.name in processes and s.name not in self._ready
        }
        with httpx.Client(timeout=2.0) as client:
            while pending:
                for name, service in list(pending.items()):
                    if processes[name].poll() is not None:
                        raise RuntimeError(
                            f"{name} exited during start-up; see {self.log_dir / name}.log"
                        )
                    try:
                        if client.get(service.base_url + service.ready_path).status_code == 200:
                            _say(f"  ready: {name}")
                            self._ready.add(name)
                            del pending[name]
                    except httpx.TransportError:
                        pass
                if pending and time.monotonic() > deadline:
                    raise RuntimeError(
                        f"not ready after {READY_TIMEOUT_SECONDS:.0f}s: {', '.join(pending)}"
                    )
                time.sleep(0.5)

    def _ensure_source_db(self) -> None:
        from services.emulator.main import seed_db
        from services.emulator.source_db import connect, has_tables

        settings = EmulatorSettings()
        if not has_tables(connect(settings.source_db_url.get_secret_value())):
            _say("creating the source database (11,000 generated posts)")
            seed_db(settings, None, 11_000, 100, None)

    def up(
        self, *, detach: bool, with_emulator: bool, with_kafka: bool = True, observe: bool = False
    ) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if with_kafka:
            self._kafka("start")
            self._kafka_marker.touch()
        services = [
            s
            for s in self.services
            if (with_emulator or s.name != "emulator") and (observe or s.name != "prometheus")
        ]
        if observe:
            services = [self._with_prometheus_command(s, services) for s in services]
        if with_emulator:
            self._ensure_source_db()
        processes: dict[str, subprocess.Popen[bytes]] = {}
        try:
            # The emulator starts once the API it posts to is ready; Prometheus last.
            for group in (
                [s for s in services if s.name not in ("emulator", "prometheus")],
                [s for s in services if s.name == "emulator"],
                [s for s in services if s.name == "prometheus"],
            ):
                for service in group:
                    processes[service.name] = self._start(service)
                self._wait_ready(processes)
        except BaseException:
            self.down()
            raise
        _say(f"\npinpipe is up (logs: {self.log_dir}); Kafka on 127.0.0.1:{self.kafka_port}")
        for service in services:
            for label, path in service.urls:
                _say(f"  {label:<20} {service.base_url}{path}")
        if detach:
            _say("\nstop it with: pinpipe down   (or: make down)")
            return
        _say("\nCtrl-C stops everything.")
        signal.signal(signal.SIGTERM, _raise_stop)
        signal.signal(signal.SIGHUP, _raise_stop)
        try:
            while True:
                dead = [n for n, p in processes.items() if p.poll() is not None]
                if dead:
                    _say(f"{', '.join(dead)} exited; see {self.log_dir}; stopping", err=True)
                    break
                time.sleep(1.0)
        except (KeyboardInterrupt, _Stop):
            _say("\nstopping…")
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
            self.down()

    def _with_prometheus_command(self, service: Service, services: list[Service]) -> Service:
        """The prometheus entry with its command: scraping every other service started."""
        if service.name != "prometheus":
            return service
        port = int(service.base_url.rsplit(":", 1)[1])
        targets = {s.name: s.base_url for s in services if s.name != "prometheus"}
        return replace(service, program=prometheus_command(self.var_dir, port, targets))

    def down(self) -> None:
        """Stop every service with a pid file (SIGTERM, then SIGKILL after a grace period),
        emulator first so nothing posts into a stopping pipeline, then Kafka."""
        for service in reversed(self.services):
            pidfile = self._pidfile(service.name)
            if not pidfile.exists():
                continue
            pid = int(pidfile.read_text())
            _stop_process(pid, service.name)
            pidfile.unlink(missing_ok=True)
        if self._kafka_marker.exists():
            try:
                self._kafka("stop")
            except subprocess.CalledProcessError as exc:
                _say(f"stopping Kafka failed ({exc}); see {KAFKA_SCRIPT} stop", err=True)
            else:
                self._kafka_marker.unlink()


def _stop_process(pid: int, name: str) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
            if finished:
                break
        except ChildProcessError:  # not our child (a detached run): poll for existence
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
        time.sleep(0.2)
    else:
        _say(f"{name} (pid {pid}) did not stop in {STOP_TIMEOUT_SECONDS:.0f}s; killing", err=True)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _say(f"  stopped: {name}")
