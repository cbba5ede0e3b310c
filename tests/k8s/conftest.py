"""A real single-node Kubernetes cluster for the test run (``make test-k8s``): built and started
by ``infra/k8s/cluster.sh up``, stopped by ``cluster.sh down`` at the end, also when a test fails;
then the host must hold nothing of it (no process, bridge, iptables chain, ipset, cgroup or mount).

``PINPIPE_K8S_KEEP=1`` leaves the cluster running afterwards (and skips that check), for working
on the tests: ``cluster.sh up`` is quick on a running cluster; ``make cluster-down`` ends it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers import REPO_ROOT, free_port

CLUSTER = REPO_ROOT / "infra" / "k8s" / "cluster.sh"
NAMESPACE = "pinpipe"


class PortForwardFailed(Exception):
    """kubectl port-forward did not start (e.g. the Service has no running pod yet)."""


@dataclass(frozen=True)
class Kube:
    """kubectl against the test cluster."""

    kubectl: str
    kubeconfig: str

    def run(
        self, *args: str, timeout: float = 120, check: bool = True, stdin: str | None = None
    ) -> str:
        result = subprocess.run(
            [self.kubectl, "--kubeconfig", self.kubeconfig, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json"))

    def ns(self, *args: str, **kwargs: Any) -> str:
        return self.run("-n", NAMESPACE, *args, **kwargs)

    def ingest_key(self, key: str = "api-keys") -> str:
        """A key of the ingest API from the Secret the overlay generated (pinpipe-ingest-<hash>):
        ``api-keys`` (the first producer's key) or ``admin-api-keys``."""
        secrets = self.json("-n", NAMESPACE, "get", "secrets")["items"]
        (secret,) = [s for s in secrets if s["metadata"]["name"].startswith("pinpipe-ingest-")]
        return base64.b64decode(secret["data"][key]).decode().split(",")[0].strip()

    @contextlib.contextmanager
    def port_forward(self, target: str, port: int) -> Iterator[str]:
        """``kubectl port-forward`` of ``target`` (``svc/aggregator``) on a free local port;
        yields ``http://127.0.0.1:<local>``. It goes to one pod, picked at the start: after
        that pod is deleted, open a new one."""
        local = free_port()
        process = subprocess.Popen(
            [
                self.kubectl,
                "--kubeconfig",
                self.kubeconfig,
                "-n",
                NAMESPACE,
                "port-forward",
                target,
                f"{local}:{port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # "Forwarding from 127.0.0.1:… -> …" once it listens
            if "Forwarding from" not in line:
                process.kill()
                raise PortForwardFailed(f"port-forward {target}: {line}{process.stdout.read()}")
            yield f"http://127.0.0.1:{local}"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def _cluster(action: str, timeout: float) -> str:
    result = subprocess.run(
        ["bash", str(CLUSTER), action], capture_output=True, text=True, timeout=timeout
    )
    print(result.stderr[-6000:])
    assert result.returncode == 0, f"cluster.sh {action} failed:\n{result.stderr[-6000:]}"
    return result.stdout


def _leftovers(state: Path) -> list[str]:
    """What a stopped cluster must not leave on the host."""
    found = []
    if subprocess.run(["ip", "link", "show", "cni0"], capture_output=True).returncode == 0:
        found.append("the bridge cni0")
    for table in ("filter", "nat", "mangle"):
        rules = subprocess.run(
            ["iptables-save", "-t", table], capture_output=True, text=True
        ).stdout
        chains = [line for line in rules.splitlines() if line.startswith((":KUBE-", ":CNI-"))]
        found += [f"iptables {table} {c.split()[0]}" for c in chains]
    sets = subprocess.run(["ipset", "list", "-n"], capture_output=True, text=True).stdout
    found += [f"ipset {name}" for name in sets.split() if name.startswith(("KUBE-", "kube-router"))]
    found += [f"cgroup {path}" for path in Path("/sys/fs/cgroup").glob("*/kubepods")]
    mounts = Path("/proc/mounts").read_text()
    found += [f"mount {line.split()[1]}" for line in mounts.splitlines() if str(state) in line]
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "pinpipe-k8s" in command or "/pinpipe/k8s/bin-" in command:
                found.append(f"process {pid}: {command[:120]}")
    return found


@pytest.fixture(scope="session")
def kube() -> Iterator[Kube]:
    started = time.monotonic()
    try:
        _cluster("up", timeout=3600)
        print(f"cluster up in {time.monotonic() - started:.0f}s")
        env = _cluster("env", timeout=60)
        kubeconfig = env.strip().split("=", 1)[1]
        kubectl = (
            subprocess.run(
                ["bash", str(REPO_ROOT / "infra" / "k8s" / "build.sh"), "--print"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            + "/kubectl"
        )
        yield Kube(kubectl, kubeconfig)
    finally:
        if os.environ.get("PINPIPE_K8S_KEEP") != "1":
            state = Path(os.environ.get("K8S_STATE", "/var/lib/pinpipe-k8s"))
            _cluster("down", timeout=600)
            left = _leftovers(state)
            assert not left, f"the cluster left behind: {left}"
