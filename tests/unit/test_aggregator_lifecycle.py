"""The aggregator's restart in place (services/aggregator/lifecycle.py), in a real process: after
a failure it serves /healthz 503 through the backoff, then executes itself again with the same
pid, and the restart count carries over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from services.aggregator.lifecycle import Restarts
from tests.conftest import wait_until
from tests.servers import REPO_ROOT, free_port

# What main.py does after a worker failure, without Faust: fail twice, then stop cleanly.
PROGRAM = """
import json, os, sys
from services.aggregator.config import AggregatorSettings
from services.aggregator.lifecycle import Restarts, restart_in_place
settings = AggregatorSettings()
restarts = Restarts.load(settings.aggregator_datadir)
print(json.dumps({"pid": os.getpid(), "restarts": restarts.count}), flush=True)
if restarts.count < 2:
    restart_in_place(settings, "the agent crashed (test)", 0.0)
"""


def test_a_failed_worker_is_restarted_in_place_with_health_failing_meanwhile(
    tmp_path: Path,
) -> None:
    port = free_port(start=26300)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "PINPIPE_AGGREGATOR_DATADIR": str(tmp_path),
        "PINPIPE_AGGREGATOR_PORT": str(port),
        "PINPIPE_RETRY_MAX_BACKOFF_SECONDS": "4",
    }
    out = tmp_path / "out.jsonl"
    with out.open("w") as stdout:
        process = subprocess.Popen([sys.executable, "-c", PROGRAM], env=env, stdout=stdout)
    try:

        def unhealthy() -> dict[str, str] | None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except httpx.HTTPError:
                return None
            return answer.json() if answer.status_code == 503 else None

        seen = wait_until(unhealthy, timeout=30, interval=0.02, what="/healthz 503 in the pause")
        assert seen == {"status": "restarting after: the agent crashed (test)"}
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [run["restarts"] for run in runs] == [0, 1, 2]
    assert {run["pid"] for run in runs} == {process.pid}, "not the same process"
    saved = json.loads((tmp_path / "restarts.json").read_text())
    assert saved["pid"] == process.pid and saved["count"] == 2 and saved["streak"] == 2


def test_restarts_of_another_process_are_not_counted(tmp_path: Path) -> None:
    (tmp_path / "restarts.json").write_text(
        json.dumps({"pid": os.getpid() + 1, "count": 5, "streak": 5, "failing_since": 1.0})
    )
    assert Restarts.load(tmp_path).count == 0
