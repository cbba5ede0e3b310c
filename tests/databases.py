"""Real database servers for the test run: PostgreSQL and MariaDB (MySQL), from Debian's
packages, each a private instance in a temporary folder on a free loopback port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy

from tests.servers import free_port


def _wait(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with sqlalchemy.create_engine(url).connect() as conn:
                conn.execute(sqlalchemy.text("SELECT 1"))
            return
        except sqlalchemy.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server (its own cluster, trust auth) run as the ``postgres`` user."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        raise RuntimeError("PostgreSQL is not installed: make setup-test installs it")
    bin_dir = Path(bins[-1])
    # The server runs as `postgres`, which cannot enter pytest's private (0700) temp folders.
    directory = Path(tempfile.mkdtemp(prefix="pinpipe-postgres-"))
    directory.chmod(0o755)
    data = directory / "pgdata"
    data.mkdir()
    shutil.chown(directory, "postgres")
    shutil.chown(data, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    port = free_port(start=27000)
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [
            *as_postgres,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(directory / "postgres.log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    try:
        _wait(url)
        yield url
    finally:
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            check=False,
            capture_output=True,
        )


@contextmanager
def mariadb_server(directory: Path) -> Iterator[str]:
    """A MariaDB server (MySQL protocol) with a ``pinpipe`` database, grants off."""
    data = directory / "mysql"
    subprocess.run(
        [
            "mariadb-install-db",
            "--user=root",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port(start=27500)
    log = open(directory / "mariadb.log", "wb")
    server = subprocess.Popen(
        [
            "mariadbd",
            "--no-defaults",
            "--user=root",
            f"--datadir={data}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={directory / 'mysql.sock'}",
            f"--pid-file={directory / 'mysql.pid'}",
            "--skip-grant-tables",
            "--skip-log-bin",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(f"mysql+pymysql://root@127.0.0.1:{port}/mysql")
        with sqlalchemy.create_engine(
            f"mysql+pymysql://root@127.0.0.1:{port}/mysql"
        ).begin() as conn:
            conn.execute(sqlalchemy.text("CREATE DATABASE IF NOT EXISTS pinpipe"))
        yield f"mysql+pymysql://root@127.0.0.1:{port}/pinpipe"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
