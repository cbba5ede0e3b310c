"""Real servers for the test run: the local Kafka broker and the SeaweedFS S3 server, started
through the same scripts as `make up`, on free loopback ports, stopped by process id."""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# The kernel's ephemeral ports (outgoing connections) start here: a port found free above it
# can be taken by a client before the server binds it.
EPHEMERAL_START = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
# infra/s3/seaweedfs.sh: S3, master, volume and filer, then their gRPC ports
S3_PORT_OFFSETS = tuple(range(8))


def free_port(offsets: tuple[int, ...] = (0,), start: int = 20000) -> int:
    """A port p such that p + each offset is free on 127.0.0.1, below the ephemeral range."""
    for base in range(start, EPHEMERAL_START - max(offsets), 17):
        if all(_free(base + o) for o in offsets):
            return base
    raise RuntimeError(f"no free port block from {start} below {EPHEMERAL_START}")


@dataclass
class _ScriptServer:
    """A server run by one of the repository's infra scripts (start / stop by pid file)."""

    port: int
    state_dir: Path

    script = ""

    def _env(self) -> dict[str, str]:
        raise NotImplementedError

    def _run(self, action: str) -> None:
        subprocess.run(["bash", str(REPO_ROOT / self.script), action], env=self._env(), check=True)

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")


@dataclass
class KafkaServer(_ScriptServer):
    script = "infra/kafka/kafka.sh"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KAFKA_PORT": str(self.port), "KAFKA_STATE_DIR": str(self.state_dir)}


@dataclass
class S3Server(_ScriptServer):
    script = "infra/s3/seaweedfs.sh"
    access_key: str = "pinpipe-test"
    secret_key: str = "pinpipe-test-secret"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "S3_PORT": str(self.port),
            "S3_STATE_DIR": str(self.state_dir),
            "S3_ACCESS_KEY": self.access_key,
            "S3_SECRET_KEY": self.secret_key,
        }
