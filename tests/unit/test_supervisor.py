"""The supervisor behind `pinpipe up` (cli/supervisor.py, cli/stack.py) with real child
processes (small Python programs), and process identities that survive pid reuse."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import supervisor as sup
from cli.process_identity import ProcessIdentity
from cli.stack import Stack
from tests.conftest import wait_until
from tests.servers import free_port


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_an_identity_names_one_process_not_its_pid(sleeper: subprocess.Popen[bytes]) -> None:
    identity = ProcessIdentity.of(sleeper.pid)
    assert identity is not None and identity.alive
    impostor = ProcessIdentity(sleeper.pid, identity.ticks + 1)  # the same pid, started later
    assert not impostor.alive
    assert not impostor.send(signal.SIGKILL)
    assert sleeper.poll() is None, "a process of another start time was signalled"
    assert identity.send(signal.SIGTERM)
    assert sleeper.wait(timeout=10) == -signal.SIGTERM
    assert not identity.alive and not identity.send(signal.SIGTERM)


def test_down_spares_a_process_that_reuses_a_recorded_pid(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    identity = ProcessIdentity.of(sleeper.pid)
    assert identity is not None
    run_dir = tmp_path / "var" / "run"
    run_dir.mkdir(parents=True)
    reused = {"pid": sleeper.pid, "ticks": identity.ticks - 1}  # what an older run recorded
    state = {
        "supervisor": reused,
        "started_at": 0,
        "up": True,
        "children": [{"name": "cleaner", "identity": reused, "state": "running", "restarts": 0}],
    }
    (run_dir / "stack.json").write_text(json.dumps(state))
    stack = Stack(tmp_path / "var")
    assert stack.running() is None and stack.leftovers() == []
    assert stack.down()
    assert sleeper.poll() is None, "down signalled a pid it did not start"
    assert not (run_dir / "stack.json").exists()


def _program(
    tmp_path: Path, name: str, code: str, restart: str = "always", port: int = 1
) -> sup.Program:
    """A child that appends a line to ``<name>.runs`` when it starts, then runs ``code``; ready
    when something answers on ``port``."""
    runs = tmp_path / f"{name}.runs"
    script = f"open({str(runs)!r}, 'a').write('run\\n'); {code}"
    return sup.Program(
        name, [sys.executable, "-c", script], f"http://127.0.0.1:{port}/", restart=restart
    )


def _runs(tmp_path: Path, name: str) -> int:
    path = tmp_path / f"{name}.runs"
    return path.read_text().count("run") if path.exists() else 0


def test_a_child_that_exits_is_restarted_with_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sup, "RESTART_FIRST_SECONDS", 0.05)
    supervisor = sup.Supervisor(tmp_path / "run", tmp_path / "log")
    child = supervisor.start(_program(tmp_path, "crasher", "raise SystemExit(7)"))

    def restarted_twice() -> bool:
        supervisor.tick()
        return child.restarts >= 2 and _runs(tmp_path, "crasher") >= 3

    wait_until(restarted_twice, timeout=30, interval=0.02, what="two restarts")
    assert child.last_exit == 7 and child.streak >= 2
    state = sup.read_state(tmp_path / "run")
    assert state is not None
    assert state["children"][0]["restarts"] >= 2
    assert state["children"][0]["last_exit"] == 7
    supervisor.stop_all([])


def test_an_on_failure_child_that_finishes_is_left_alone(tmp_path: Path) -> None:
    supervisor = sup.Supervisor(tmp_path / "run", tmp_path / "log")
    child = supervisor.start(_program(tmp_path, "job", "pass", restart="on-failure"))

    def finished() -> bool:
        supervisor.tick()
        return child.state == "done"

    wait_until(finished, timeout=30, interval=0.02, what="the job done")
    for _ in range(5):
        supervisor.tick()
    assert child.restarts == 0 and _runs(tmp_path, "job") == 1 and child.last_exit == 0


def test_readiness_is_probed_and_stop_all_stops_in_order(tmp_path: Path) -> None:
    supervisor = sup.Supervisor(tmp_path / "run", tmp_path / "log")
    ports = [free_port(start=26100), free_port(start=26200)]
    serve = "import http.server as h; h.test(h.SimpleHTTPRequestHandler, port={}, bind='127.0.0.1')"
    first = supervisor.start(_program(tmp_path, "first", serve.format(ports[0]), port=ports[0]))
    second = supervisor.start(_program(tmp_path, "second", serve.format(ports[1]), port=ports[1]))
    supervisor.wait_ready([first, second], timeout=30)
    assert first.state == second.state == "running"
    processes = [first.process, second.process]
    supervisor.stop_all(["second", "first"])
    assert all(p is not None and p.poll() == -signal.SIGTERM for p in processes)
    assert first.state == second.state == "stopped"
