"""A pinpipe service (``pinpipe <command>``) in a process of its own, for tests that kill it."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import wait_until
from tests.servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class ServiceProcess:
    """``pinpipe <command>`` serving /readyz and /metrics on the port ``port_variable`` names."""

    command: str
    env: dict[str, str]
    log: Path
    port_variable: str
    port: int = field(default_factory=lambda: free_port(start=24000))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        """Launch, then wait until /readyz answers 200."""
        self.launch()
        wait_until(self._ready, timeout=60, what=f"{self.command} ready (log: {self.log})")
        return self

    def launch(self) -> ServiceProcess:
        """Start the process without waiting for it to be ready."""
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", self.command],
                cwd=REPO_ROOT,
                env={**self.env, "PYTHONPATH": str(REPO_ROOT), self.port_variable: str(self.port)},
                stdout=out,
                stderr=out,
            )
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.command} exited; log:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(self.url + "/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample on /metrics (0 when it is not there)."""
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        line_start = f"{name}{{{wanted}}} " if labels else f"{name} "
        for line in httpx.get(self.url + "/metrics", timeout=5).text.splitlines():
            if line.startswith(line_start):
                return float(line.split()[-1])
        return 0.0

    def metric_sum(self, name: str) -> float:
        """The sum of every sample of one metric on /metrics, whatever its labels."""
        lines = httpx.get(self.url + "/metrics", timeout=5).text.splitlines()
        return sum(
            float(line.split()[-1]) for line in lines if line.startswith((f"{name}{{", f"{name} "))
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=60)
