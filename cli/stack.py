"""The local stack behind ``pinpipe up`` / ``status`` / ``down``: Kafka (``infra/kafka/kafka.sh
run``) and the five services (and Prometheus with ``--observe``) as children of a supervisor
(:mod:`cli.supervisor`) that restarts whatever exits; logs under ``var/log``, the run's state
in ``var/run/stack.json``.

``up`` runs the supervisor in the foreground (Ctrl-C stops everything); ``up --detach`` runs the
same command as a background process of its own and returns once every service is ready.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.observe import DEFAULT_PORT as DEFAULT_PROMETHEUS_PORT
from cli.observe import prometheus_command
from cli.process_identity import ProcessIdentity
from cli.supervisor import (
    STOP_TIMEOUT_SECONDS,
    Program,
    Supervisor,
    probe,
    read_state,
    say,
    stop_process,
)
from services.aggregator.config import AggregatorSettings
from services.cleaner.config import CleanerSettings
from services.emulator.config import EmulatorSettings
from services.ingest_api.config import IngestSettings
from services.s3_sink.config import S3SinkSettings
from shared.settings import DEFAULT_VAR_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = REPO_ROOT / "infra" / "kafka" / "kafka.sh"
KAFKA_JARS = REPO_ROOT / "var" / "kafka"  # where `make setup` resolved the jars
READY_TIMEOUT_SECONDS = 180.0
# the emulator stops first (nothing posts into a stopping pipeline), Kafka last
STOP_ORDER = ["emulator", "prometheus", "ingest-api", "cleaner", "aggregator", "s3-sink", "kafka"]


def _base(host: str, port: int) -> str:
    return f"http://{host}:{port}"


@dataclass(frozen=True)
class Options:
    """What ``pinpipe up`` starts."""

    emulator: bool = True
    kafka: bool = True
    observe: bool = False
    prometheus_port: int = DEFAULT_PROMETHEUS_PORT

    def arguments(self) -> list[str]:
        """The same options as ``pinpipe up`` arguments (for the detached supervisor)."""
        return [
            "--emulator" if self.emulator else "--no-emulator",
            "--kafka" if self.kafka else "--no-kafka",
            "--observe" if self.observe else "--no-observe",
            f"--prometheus-port={self.prometheus_port}",
        ]


class Stack:
    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.log_dir = var_dir / "log"
        self.run_dir = var_dir / "run"

    @classmethod
    def here(cls) -> Stack:
        return cls(DEFAULT_VAR_DIR.resolve())

    # -- what runs --------------------------------------------------------------------------
    def programs(self, options: Options) -> list[list[Program]]:
        """Start-up groups, each started once the previous one is ready."""
        ingest, cleaner, aggregator = IngestSettings(), CleanerSettings(), AggregatorSettings()
        sink, emulator = S3SinkSettings(), EmulatorSettings()
        pinpipe = [sys.executable, "-m", "cli.main"]

        def service(
            command: str, base: str, *urls: tuple[str, str], restart: str = "always"
        ) -> Program:
            return Program(
                command.split()[0],
                [*pinpipe, *command.split()],
                base + "/readyz",
                tuple((label, base + path) for label, path in urls),
                restart,
            )

        ingest_base = _base(ingest.ingest_host, ingest.ingest_port)
        aggregator_base = _base(aggregator.aggregator_host, aggregator.aggregator_port)
        cleaner_base = _base(cleaner.cleaner_host, cleaner.cleaner_port)
        sink_base = _base(sink.s3_sink_host, sink.s3_sink_port)
        emulator_base = _base(emulator.emulator_host, emulator.emulator_port)
        services = [
            service("ingest-api", ingest_base, ("ingest API docs", "/docs")),
            service("cleaner", cleaner_base, ("cleaner metrics", "/metrics")),
            service(
                "aggregator",
                aggregator_base,
                ("aggregates", "/aggregates/posts-per-country"),
                ("aggregator metrics", "/metrics"),
            ),
            service("s3-sink", sink_base, ("s3 sink metrics", "/metrics")),
        ]
        groups: list[list[Program]] = []
        if options.kafka:
            groups.append([self._kafka_program(ingest.kafka_bootstrap_servers)])
        groups.append(services)
        if options.emulator:
            groups.append(
                [
                    # SIGTERM ends its run for good (exit 0); a crash or kill -9 restarts it
                    service(
                        "emulator run",
                        emulator_base,
                        ("emulator metrics", "/metrics"),
                        restart="on-failure",
                    )
                ]
            )
        if options.observe:
            targets = {p.name: p.ready_url.rsplit("/", 1)[0] for g in groups for p in g}
            targets.pop("kafka", None)
            base = _base("127.0.0.1", options.prometheus_port)
            groups.append(
                [
                    Program(
                        "prometheus",
                        prometheus_command(self.var_dir, options.prometheus_port, targets),
                        base + "/-/ready",
                        (
                            ("prometheus", base + "/graph"),
                            ("prometheus targets", base + "/targets"),
                        ),
                    )
                ]
            )
        return groups

    def _kafka_program(self, bootstrap_servers: str) -> Program:
        port = int(bootstrap_servers.split(",")[0].rsplit(":", 1)[1])
        return Program(
            "kafka",
            ["bash", str(KAFKA_SCRIPT), "run"],
            f"kafka://127.0.0.1:{port}",
            (("kafka", f"127.0.0.1:{port}"),),
        )

    def _kafka_env(self, bootstrap_servers: str) -> dict[str, str]:
        port = bootstrap_servers.split(",")[0].rsplit(":", 1)[1]
        return {
            "KAFKA_PORT": port,
            "KAFKA_HOME": str(KAFKA_JARS),
            "KAFKA_STATE_DIR": str(self.var_dir / "kafka" / f"run-{port}"),
        }

    # -- up ---------------------------------------------------------------------------------
    def running(self) -> dict[str, Any] | None:
        """The state of a run whose supervisor is alive, else None."""
        state = read_state(self.run_dir)
        if state is None or not state.get("supervisor"):
            return None
        if not ProcessIdentity.from_json(state["supervisor"]).alive:
            return None
        return state

    def leftovers(self) -> list[str]:
        """Children of a supervisor that died without stopping them (kill -9)."""
        state = read_state(self.run_dir)
        if state is None:
            return []
        return [
            f"{c['name']} (pid {c['identity']['pid']})"
            for c in state["children"]
            if c.get("identity") and ProcessIdentity.from_json(c["identity"]).alive
        ]

    def up(self, options: Options, *, detach: bool) -> None:
        running = self.running()
        if running is not None:
            raise RuntimeError(
                f"pinpipe is already up (supervisor pid {running['supervisor']['pid']}): "
                "`pinpipe status` shows it, `pinpipe down` stops it"
            )
        if left := self.leftovers():
            raise RuntimeError(
                f"a previous run left {', '.join(left)} running: `pinpipe down` stops them"
            )
        if detach:
            self._up_detached(options)
        else:
            self._up_foreground(options)

    def _up_detached(self, options: Options) -> None:
        """Run ``pinpipe up`` (foreground) as a background process of its own; return once
        every program is ready, or fail with its log."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "stack.json").unlink(missing_ok=True)
        log_path = self.log_dir / "supervisor.log"
        with open(log_path, "ab") as log:
            supervisor = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "up", *options.arguments()],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        say(f"supervisor started in the background (pid {supervisor.pid}; log: {log_path})")
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS + 60
        shown: set[str] = set()
        while True:
            state = read_state(self.run_dir) or {"children": [], "up": False}
            for child in state["children"]:
                if child["state"] == "running" and child["name"] not in shown:
                    shown.add(child["name"])
                    say(f"  ready: {child['name']}")
            if state["up"]:
                break
            if supervisor.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
                raise RuntimeError(f"pinpipe did not come up; the supervisor's log:\n{tail}")
            time.sleep(0.5)
        self._print_urls(self.programs(options))
        say("\nstatus: pinpipe status   stop: pinpipe down   (or: make down)")

    def _up_foreground(self, options: Options) -> None:
        groups = self.programs(options)
        stop_signal: list[str] = []

        def request_stop(signum: int, _frame: object) -> None:
            stop_signal.append(signal.Signals(signum).name)

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, request_stop)
        supervisor = Supervisor(
            self.run_dir, self.log_dir, self._environment(), stopping=lambda: bool(stop_signal)
        )
        supervisor.write_state()
        try:
            for group in groups:
                if any(p.name == "emulator" for p in group):
                    self._ensure_source_db()
                started = [supervisor.start(program) for program in group]
                supervisor.wait_ready(started, READY_TIMEOUT_SECONDS)
                if stop_signal:
                    break
            else:
                supervisor.up = True
                supervisor.write_state()
                say(f"\npinpipe is up (supervisor pid {os.getpid()}; logs: {self.log_dir})")
                self._print_urls(groups)
                say("\nCtrl-C (or pinpipe down) stops everything; what exits is restarted.")
                supervisor.supervise()
            say(f"\nstopping ({stop_signal[0]})…")
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop
            supervisor.stop_all(STOP_ORDER)
            (self.run_dir / "stack.json").unlink(missing_ok=True)

    def _environment(self) -> dict[str, str]:
        """The children's environment: this one, plus where `kafka.sh run` keeps its state."""
        bootstrap = IngestSettings().kafka_bootstrap_servers
        return {**os.environ, **self._kafka_env(bootstrap)}

    def _ensure_source_db(self) -> None:
        from services.emulator.main import seed_db
        from services.emulator.source_db import connect, has_tables

        settings = EmulatorSettings()
        if not has_tables(connect(settings.source_db_url.get_secret_value())):
            say("creating the source database (11,000 generated posts)")
            seed_db(settings, None, 11_000, 100, None)

    def _print_urls(self, groups: list[list[Program]]) -> None:
        say("")
        for group in groups:
            for program in group:
                for label, url in program.urls:
                    say(f"  {label:<20} {url}")
        ingest = IngestSettings()
        if not (ingest.api_keys() or ingest.admin_api_keys()):
            say(
                f"\n  the ingest API is open: no API keys, and it listens on {ingest.ingest_host} "
                "only\n  (keys: PINPIPE_INGEST_API_KEYS, PINPIPE_INGEST_ADMIN_API_KEYS)"
            )

    # -- status -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any] | None:
        """Each program with its pid, state, live readiness, restarts and uptime; None when
        no supervisor runs."""
        state = self.running()
        if state is None:
            return None
        now = time.time()
        return {
            "supervisor_pid": state["supervisor"]["pid"],
            "up_seconds": round(now - state["started_at"], 1),
            "services": [
                {
                    "name": child["name"],
                    "pid": child["identity"]["pid"] if child["identity"] else None,
                    "state": child["state"],
                    "ready": child["identity"] is not None and probe(child["ready_url"], 1.0),
                    "restarts": child["restarts"],
                    "uptime_seconds": round(now - child["started_at"], 1)
                    if child["identity"]
                    else None,
                    "last_exit": child["last_exit"],
                    "log": child["log"],
                }
                for child in state["children"]
            ],
        }

    # -- down -------------------------------------------------------------------------------
    def down(self) -> bool:
        """Stop the run: its supervisor (which stops its children in order), then whatever a
        dead supervisor left. Only processes identified by pid *and* start time are signalled.
        Whether anything was running."""
        state = read_state(self.run_dir)
        if state is None:
            return False
        supervisor = state.get("supervisor")
        if supervisor:
            identity = ProcessIdentity.from_json(supervisor)
            if identity.pid != os.getpid() and identity.alive:
                say(f"stopping the supervisor (pid {identity.pid}) and its services…")
                identity.send(signal.SIGTERM)
                deadline = time.monotonic() + STOP_TIMEOUT_SECONDS * len(STOP_ORDER)
                while identity.alive and time.monotonic() < deadline:
                    time.sleep(0.2)
                if identity.alive:
                    say("the supervisor did not stop in time; killing it", err=True)
                    identity.send(signal.SIGKILL)
        state = read_state(self.run_dir) or state  # what its stop left
        rank = {name: i for i, name in enumerate(STOP_ORDER)}
        for child in sorted(state["children"], key=lambda c: rank.get(c["name"], -1)):
            if child.get("identity"):
                stop_process(ProcessIdentity.from_json(child["identity"]), child["name"])
        (self.run_dir / "stack.json").unlink(missing_ok=True)
        return True


def format_status(status: dict[str, Any]) -> str:
    """``pinpipe status`` as a table."""
    lines = [
        f"pinpipe is up: supervisor pid {status['supervisor_pid']}, "
        f"for {_duration(status['up_seconds'])}",
        f"{'service':<12} {'pid':>8}  {'state':<9} {'ready':<5} {'restarts':>8}  uptime",
    ]
    for s in status["services"]:
        pid = str(s["pid"]) if s["pid"] else "-"
        ready = "yes" if s["ready"] else "no"
        uptime = _duration(s["uptime_seconds"]) if s["uptime_seconds"] is not None else "-"
        lines.append(
            f"{s['name']:<12} {pid:>8}  {s['state']:<9} {ready:<5} {s['restarts']:>8}  {uptime}"
        )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
