"""Time to first answer for a newcomer: from ``git clone`` to the first non-empty live answer
(``GET /aggregates/posts-per-country`` with rows) with ``make up``, on this machine.

    make bench              (or: .venv/bin/python -m bench.first_answer --help)

Three runs, each a ``make up`` in the foreground until the answer, then ``make down``:

1. cold: a fresh clone of this checkout, empty caches (pip's cache and Maven's local repository
   in a new folder): every package and Kafka jar downloaded. Target: under 3 minutes.
2. warm clone: another fresh clone with the caches run 1 filled (a new machine's second
   checkout).
3. warm: ``make up`` again in the clone of run 2 (a newcomer's second day). Target: under 20 s.

Also the installed size (the clone's .venv and Kafka jars). The default ports (Kafka 9092-9093,
services 8000-8004) must be free: this measures the newcomer's command as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.local_stack import ROOT

ANSWER_URL = "http://127.0.0.1:8001/aggregates/posts-per-country"
PORTS = (9092, 9093, 8000, 8001, 8002, 8003, 8004)
COLD_TARGET_S = 180.0
WARM_TARGET_S = 20.0
DEADLINE_S = 900.0


def _busy_ports() -> list[int]:
    busy = []
    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    return busy


def _clone(into: Path) -> None:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(into)], check=True)


def _du(path: Path) -> int:
    if not path.exists():
        return 0
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def _answered() -> bool:
    try:
        response = httpx.get(ANSWER_URL, timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and bool(response.json().get("rows"))


def first_answer(clone: Path, environment: dict[str, str], label: str) -> float:
    """Seconds from ``make up`` to the first non-empty live answer; stops the stack after."""
    log_path = clone.parent / f"{label}.log"
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        up = subprocess.Popen(
            ["make", "up"], cwd=clone, env=environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            last_said = 0.0
            while not _answered():
                elapsed = time.perf_counter() - started
                if up.poll() is not None:
                    raise RuntimeError(f"{label}: make up exited {up.returncode}; see {log_path}")
                if elapsed > DEADLINE_S:
                    raise RuntimeError(f"{label}: no answer in {DEADLINE_S:.0f} s; see {log_path}")
                if elapsed - last_said >= 15:
                    print(f"   {label}: {elapsed:4.0f} s, waiting for an answer …", flush=True)
                    last_said = elapsed
                time.sleep(0.25)
            seconds = time.perf_counter() - started
        finally:
            subprocess.run(
                ["make", "down"], cwd=clone, env=environment, stdout=log, stderr=log, check=False
            )
            try:
                up.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
    print(f"{label}: first answer {seconds:.1f} s after `make up`", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "first_answer.json")
    parser.add_argument("--keep", action="store_true", help="keep the clones and caches")
    args = parser.parse_args()
    if busy := _busy_ports():
        sys.exit(f"first_answer: ports {busy} are taken; stop what uses them (`pinpipe down`)")
    work = Path(tempfile.mkdtemp(prefix="pinpipe-first-answer-"))
    caches = work / "caches"
    environment = {
        **os.environ,
        "PIP_CACHE_DIR": str(caches / "pip"),
        "MAVEN_OPTS": f"-Dmaven.repo.local={caches / 'm2'}",
    }
    environment.pop("VIRTUAL_ENV", None)
    results: dict[str, Any] = {}
    try:
        cold, warm = work / "cold" / "pinpipe", work / "warm" / "pinpipe"
        started = time.perf_counter()
        _clone(cold)
        clone_s = time.perf_counter() - started
        results["cold_s"] = round(clone_s + first_answer(cold, environment, "cold"), 1)
        results["venv_bytes"] = _du(cold / ".venv")
        results["kafka_jars_bytes"] = _du(cold / "var" / "kafka" / "libs")
        results["caches_bytes"] = _du(caches)
        started = time.perf_counter()
        _clone(warm)
        clone_s = time.perf_counter() - started
        results["warm_clone_s"] = round(clone_s + first_answer(warm, environment, "warm-clone"), 1)
        results["warm_s"] = round(first_answer(warm, environment, "warm"), 1)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    mib = 1 << 20
    print(
        f"time to first answer: cold {results['cold_s']:.0f} s (target < {COLD_TARGET_S:.0f} s), "
        f"warm clone {results['warm_clone_s']:.0f} s, warm {results['warm_s']:.1f} s "
        f"(target < {WARM_TARGET_S:.0f} s); installed: .venv {results['venv_bytes'] / mib:.0f} MiB"
        f", Kafka jars {results['kafka_jars_bytes'] / mib:.0f} MiB, "
        f"downloaded (caches) {results['caches_bytes'] / mib:.0f} MiB"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"written to {args.out}" + (f" (clones in {work})" if args.keep else ""))


if __name__ == "__main__":
    main()
