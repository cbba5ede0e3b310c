"""The one container image: infra/image/build.sh builds the Containerfile with podman (making
the base image with debootstrap first where no registry is reachable), and the image runs the
services as a non-root user on a read-only root filesystem, with no compiler inside."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until
from tests.servers import REPO_ROOT, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

IMAGE = "localhost/pinpipe:dev"
UID = 10001
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(REPO_ROOT / "infra/image/containers.conf")}
# What Kubernetes gives a pod with readOnlyRootFilesystem: nothing writable but the mounts
# (podman would otherwise add tmpfs on /tmp, /var/tmp and /run by itself).
READ_ONLY = ["--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,mode=1777"]


def podman(*args: str, timeout: float = 300) -> str:
    """Run podman; its stdout, or a failure that shows its stderr."""
    done = subprocess.run(
        ["podman", *args], env=PODMAN_ENV, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"podman {' '.join(args)}: {done.returncode}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def image() -> str:
    """The image, built (or brought up to date) by the project's script."""
    if shutil.which("podman") is None:
        message = "podman is not installed (make setup-test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    subprocess.run(
        ["bash", "infra/image/build.sh"], cwd=REPO_ROOT, env=PODMAN_ENV, check=True, timeout=1700
    )
    return IMAGE


@pytest.fixture
def container_ids() -> Iterator[list[str]]:
    """Ids of the detached containers a test starts: removed (by id) whatever happens."""
    ids: list[str] = []
    yield ids
    for container in ids:
        subprocess.run(
            ["podman", "rm", "--force", "--time", "5", container],
            env=PODMAN_ENV,
            capture_output=True,
            timeout=60,
        )


def test_runs_as_non_root_without_build_tools(image: str) -> None:
    config = podman(
        "image", "inspect", "--format", "{{.Config.User}}|{{.Config.Entrypoint}}", image
    )
    assert config.strip() == f"{UID}:{UID}|[pinpipe]"
    script = "id -u; id -g; for tool in gcc cc c++ make; do command -v $tool || true; done"
    found = podman("run", "--rm", *READ_ONLY, "--entrypoint", "sh", image, "-c", script).split()
    assert found[:2] == [str(UID), str(UID)]
    assert found[2:] == [], f"build tools in the final image: {found[2:]}"
    # CMD is --help: the CLI lists every service's command.
    usage = podman("run", "--rm", *READ_ONLY, image)
    for command in ("ingest-api", "cleaner", "aggregator", "s3-sink", "emulator", "query"):
        assert command in usage


def test_ingest_api_answers_from_a_read_only_container(
    image: str, kafka_bootstrap: str, unique: str, container_ids: list[str]
) -> None:
    port = free_port(start=26000)
    container = podman(
        *["run", "--rm", "--detach", "--network", "host", *READ_ONLY],
        *["-e", "PINPIPE_INGEST_HOST=127.0.0.1", "-e", f"PINPIPE_INGEST_PORT={port}"],
        *["-e", f"PINPIPE_KAFKA_BOOTSTRAP_SERVERS={kafka_bootstrap}"],
        *["-e", f"PINPIPE_TOPIC_PREFIX=img{unique}", "-e", "PINPIPE_TOPIC_PARTITIONS=1"],
        *[image, "ingest-api"],
    ).strip()
    container_ids.append(container)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            state = podman("inspect", "--format", "{{.State.Status}}", container).strip()
            assert state == "running", f"the container stopped:\n{podman('logs', container)}"
            return False

    wait_until(ready, timeout=90, what="the containerised ingest API's /readyz")
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    # A record goes through to the broker (the offset is Kafka's acknowledgement).
    answer = httpx.post(
        f"{url}/topics/img{unique}.pin",
        json={"records": [{"value": {"index": 1, "title": "from the container"}}]},
        headers={"Content-Type": "application/vnd.kafka.json.v2+json"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["offsets"][0]["offset"] == 0
    assert podman("exec", container, "id", "-u").strip() == str(UID)


def test_state_goes_to_the_mounted_data_dir(image: str, tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    data.chmod(0o777)  # the container's user (uid 10001) writes here
    output = podman(
        *["run", "--rm", *READ_ONLY, "--volume", f"{data}:/app/var", image],
        *["emulator", "seed-db", "--rows", "20"],
    )
    assert "20" in output
    assert (data / "source.db").stat().st_size > 0
