"""The supervisor behind ``pinpipe up``: starts programs as child processes, restarts the ones
that exit (like a Kubernetes ``restartPolicy: Always``, with a capped exponential backoff),
and keeps the run's state in ``var/run/stack.json`` for ``pinpipe status`` and ``pinpipe down``.

Each program's readiness is probed by URL: ``http://…`` answers 200, or ``kafka://host:port``
answers a metadata request. Children run in sessions of their own (a Ctrl-C reaches the
supervisor alone, which stops them in order) and are named in the state file by pid *and*
start time (:mod:`cli.process_identity`), so nobody ever signals a reused pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cli.process_identity import ProcessIdentity

RESTART_FIRST_SECONDS = 1.0
RESTART_CAP_SECONDS = 30.0
HEALTHY_RUN_SECONDS = 60.0  # a child that ran this long starts its backoff over
STOP_TIMEOUT_SECONDS = 30.0
TICK_SECONDS = 0.5


def say(message: str, *, err: bool = False) -> None:
    """Print with a time, never failing: a closed terminal or pipe must not stop a shutdown."""
    try:
        lead = "\n" if message.startswith("\n") else ""
        stamp = time.strftime("%H:%M:%S")
        text = f"{lead}{stamp} {message.lstrip()}" if message.strip() else ""
        print(text, file=sys.stderr if err else sys.stdout, flush=True)
    except OSError:
        pass


def probe(ready_url: str, timeout: float = 2.0) -> bool:
    """Whether the program behind ``ready_url`` is ready (``http://`` or ``kafka://``)."""
    if ready_url.startswith("kafka://"):
        return kafka_answers(ready_url[len("kafka://") :], timeout)
    try:
        return httpx.get(ready_url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def kafka_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """Whether the broker answers a metadata request within ``timeout`` (quietly: while it
    starts, aiokafka would log every refused connection)."""
    import logging

    from aiokafka.client import AIOKafkaClient

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    async def check() -> bool:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
            return True
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    return asyncio.run(check())


@dataclass(frozen=True)
class Program:
    """What to run and how to tell it is ready."""

    name: str
    command: list[str]
    ready_url: str
    urls: tuple[tuple[str, str], ...] = ()  # (label, URL) printed once the stack is up
    # "always" (a service: whatever exits is restarted) or "on-failure" (a run that ends with
    # code 0, such as the emulator stopped by SIGTERM, is done), as Kubernetes' restartPolicy
    restart: str = "always"


@dataclass
class Child:
    """A supervised program and its current process (none while it waits to restart)."""

    program: Program
    process: subprocess.Popen[bytes] | None = None
    identity: ProcessIdentity | None = None
    state: str = "stopped"  # starting | running | backoff | done | stopped
    restarts: int = 0
    streak: int = 0  # exits in a row, each after less than HEALTHY_RUN_SECONDS
    started_at: float = 0.0  # wall clock, for uptime
    started_mono: float = 0.0
    restart_at: float = 0.0  # monotonic, while in backoff
    last_exit: int | None = None
    log: Path = field(default_factory=Path)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.program.name,
            "state": self.state,
            "identity": self.identity.to_json() if self.identity else None,
            "restarts": self.restarts,
            "started_at": self.started_at,
            "last_exit": self.last_exit,
            "ready_url": self.program.ready_url,
            "log": str(self.log),
        }


class Supervisor:
    def __init__(
        self,
        run_dir: Path,
        log_dir: Path,
        env: dict[str, str] | None = None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.env = env
        self.stopping = stopping  # true once a signal asked the run to stop
        self.children: list[Child] = []
        self.up = False  # every program was ready once: the stack is up
        self.identity = ProcessIdentity.of(os.getpid())
        self.started_at = time.time()

    @property
    def state_file(self) -> Path:
        return self.run_dir / "stack.json"

    # -- starting ---------------------------------------------------------------------------
    def start(self, program: Program) -> Child:
        child = Child(program, log=self.log_dir / f"{program.name}.log")
        self.children.append(child)
        self._spawn(child)
        return child

    def _spawn(self, child: Child) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(child.log, "ab") as log:
            child.process = subprocess.Popen(
                child.program.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        child.identity = ProcessIdentity.of(child.process.pid)
        child.state = "starting"
        child.started_at, child.started_mono = time.time(), time.monotonic()
        self.write_state()

    def wait_ready(self, children: list[Child], timeout: float) -> None:
        """Supervise until every one of ``children`` has been ready once (or a stop is asked
        for); raise with the stragglers' names and log tails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while any(c.state != "running" for c in children) and not self.stopping():
            if time.monotonic() > deadline:
                late = [c for c in children if c.state != "running"]
                tails = "\n".join(
                    f"--- {c.program.name} ({c.state}, {c.restarts} restarts; {c.log}):\n"
                    + _tail(c.log)
                    for c in late
                )
                raise RuntimeError(
                    f"not ready after {timeout:.0f}s: {', '.join(c.program.name for c in late)}"
                    f"\n{tails}"
                )
            self.tick()
            time.sleep(TICK_SECONDS)

    # -- supervising ------------------------------------------------------------------------
    def tick(self) -> None:
        """One round: note exits (and schedule their restarts), restart what is due, probe
        the readiness of what is starting."""
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if process is not None and process.poll() is not None:
                self._exited(child, process.returncode, now)
            elif child.state == "backoff" and now >= child.restart_at:
                child.restarts += 1
                say(f"supervisor: restarting {child.program.name} (restart {child.restarts})")
                self._spawn(child)
            elif child.state == "starting" and probe(child.program.ready_url, timeout=1.0):
                child.state = "running"
                say(f"  ready: {child.program.name}")
                self.write_state()

    def _exited(self, child: Child, code: int, now: float) -> None:
        ran = now - child.started_mono
        if code == 0 and child.program.restart == "on-failure":
            child.process, child.identity, child.last_exit = None, None, code
            child.state = "done"
            say(f"supervisor: {child.program.name} finished (code 0); not restarted")
            self.write_state()
            return
        if ran >= HEALTHY_RUN_SECONDS:
            child.streak = 0
        delay = min(RESTART_CAP_SECONDS, RESTART_FIRST_SECONDS * 2**child.streak)
        child.streak += 1
        child.process, child.identity, child.last_exit = None, None, code
        child.state, child.restart_at = "backoff", now + delay
        how = f"signal {-code}" if code < 0 else f"code {code}"
        say(
            f"supervisor: {child.program.name} exited ({how}) after {ran:.1f}s; "
            f"restarting in {delay:.0f}s (see {child.log})",
            err=True,
        )
        self.write_state()

    def supervise(self) -> None:
        """Supervise until a stop is asked for."""
        while not self.stopping():
            self.tick()
            time.sleep(TICK_SECONDS)

    # -- stopping ---------------------------------------------------------------------------
    def stop_all(self, order: list[str]) -> None:
        """Stop every child, in ``order`` (names; the others after, last started first)."""
        rank = {name: i for i, name in enumerate(order)}
        last_first = list(reversed(self.children))
        for child in sorted(last_first, key=lambda c: rank.get(c.program.name, len(rank))):
            if child.process is not None and child.identity is not None:
                stop_process(child.identity, child.program.name, child.process)
            child.process, child.identity, child.state = None, None, "stopped"
            self.write_state()

    # -- state ------------------------------------------------------------------------------
    def write_state(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "supervisor": self.identity.to_json() if self.identity else None,
            "started_at": self.started_at,
            "up": self.up,
            "children": [child.to_json() for child in self.children],
        }
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=1) + "\n")
        os.replace(temporary, self.state_file)


def stop_process(
    identity: ProcessIdentity, name: str, process: subprocess.Popen[bytes] | None = None
) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_SECONDS; only ever the identified process."""
    import signal

    if not identity.send(signal.SIGTERM):
        return
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                break
        elif not identity.alive:
            break
        time.sleep(0.1)
    else:
        say(f"{name} (pid {identity.pid}) did not stop in {STOP_TIMEOUT_SECONDS:.0f}s; killing")
        identity.send(signal.SIGKILL)
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
    say(f"  stopped: {name}")


def read_state(run_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((run_dir / "stack.json").read_text())
    except (OSError, ValueError):
        return None
    return state


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
