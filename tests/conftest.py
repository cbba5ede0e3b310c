"""Fixtures shared by the whole test run.

One Kafka broker and one S3 server serve every test (started on first use, stopped at the
end); each test makes its own topics, consumer groups and buckets. Set
PINPIPE_TEST_KAFKA_BOOTSTRAP to use a broker that is already running instead.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.servers import S3_PORT_OFFSETS, KafkaServer, S3Server, free_port

# Hypothesis' timing checks measure the machine, not the code: on a loaded 2-core CI machine a
# cold first example can take longer than its limit (seen: too_slow on the first run).
hypothesis_settings.register_profile(
    "pinpipe", suppress_health_check=[HealthCheck.too_slow], deadline=None
)
hypothesis_settings.load_profile("pinpipe")

T = TypeVar("T")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "pinterest-data"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    existing = os.environ.get("PINPIPE_TEST_KAFKA_BOOTSTRAP")
    if existing:
        yield existing
        return
    server = KafkaServer(free_port((0, 1), start=29092), tmp_path_factory.mktemp("kafka"))
    server.start()
    try:
        yield server.bootstrap
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(free_port(S3_PORT_OFFSETS, start=28333), tmp_path_factory.mktemp("s3"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def unique() -> str:
    """A short unique name part for this test's topics, groups and buckets."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def s3_bucket(s3_server: S3Server, unique: str) -> str:
    """A new, empty bucket (created with a deadline: the first write waits for a volume)."""
    import s3fs

    fs = s3fs.S3FileSystem(
        key=s3_server.access_key,
        secret=s3_server.secret_key,
        endpoint_url=s3_server.endpoint,
        config_kwargs={"s3": {"addressing_style": "path"}},
    )
    name = f"test-{unique}"
    wait_until(lambda: _try_mkdir(fs, name), timeout=60, what=f"bucket {name}")
    return name


def _try_mkdir(fs: Any, name: str) -> bool:
    try:
        fs.mkdir(name)
    except FileExistsError:
        return True
    except Exception:
        return False
    return True


def wait_until(
    check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.25
) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


async def async_wait_until(
    check: Callable[[], Awaitable[T]], *, seconds: float, what: str, interval: float = 0.25
) -> T:
    deadline = time.monotonic() + seconds
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}; last value: {last!r}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real sample of the original dataset (never copied into the repository)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: the tests read the real sample from ../shared")
    return SHARED_DATA


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    from tests.databases import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def mysql_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.databases import mariadb_server

    with mariadb_server(tmp_path_factory.mktemp("mariadb")) as url:
        yield url
