"""Kafka over SASL_SSL (SCRAM-SHA-512, a broker certificate signed by a test CA), on a broker
of this module alone: every kind of client pinpipe builds (admin, producer, consumer,
transactional producer, Faust's) connects through ``KafkaConnection`` and a post goes from the
ingest API through the cleaner to the lake and the aggregator; with a wrong password a service
stays up, not ready, and says that authentication failed."""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.cleaner.app import create_app as create_cleaner
from services.cleaner.config import CleanerSettings
from services.ingest_api.app import create_app as create_ingest
from services.ingest_api.config import IngestSettings
from services.s3_sink.app import create_app as create_sink
from services.s3_sink.config import S3SinkSettings
from shared.kafka_admin import list_topics
from shared.topics import RECORD_TYPES, RecordType, clean_topics
from tests.conftest import SHARED_DATA, wait_until
from tests.http_server import UvicornThread
from tests.lake_rows import zone_rows
from tests.processes import ServiceProcess
from tests.servers import KafkaServer, free_port

pytestmark = pytest.mark.integration

USER = "pinpipe"
MECHANISM = "SCRAM-SHA-512"
JSON_V2 = {"Content-Type": "application/vnd.kafka.json.v2+json"}
SAMPLE_FILES = {"pin": "pinterest_data", "geo": "geolocation_data", "user": "user_data"}


@dataclass
class SecureKafka(KafkaServer):
    """The repository's broker with one more listener, SASL_SSL on ``port + 2``."""

    tls_dir: Path = Path()
    password: str = ""

    @property
    def secure_bootstrap(self) -> str:
        return f"127.0.0.1:{self.port + 2}"

    @property
    def cafile(self) -> Path:
        return self.tls_dir / "ca.pem"

    def _env(self) -> dict[str, str]:
        return {
            **super()._env(),
            "KAFKA_EXTRA_PROPERTIES": str(self.tls_dir / "sasl_ssl.properties"),
            "KAFKA_SCRAM_CREDENTIALS": str(self.tls_dir / "scram.txt"),
        }

    def configure(self) -> None:
        """A test CA, the broker's certificate for 127.0.0.1 signed by it, the listener's
        properties and the SCRAM user created when the storage is formatted."""
        d = self.tls_dir
        d.mkdir(parents=True, exist_ok=True)
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=pinpipe test CA", "-keyout", d / "ca.key", "-out", d / "ca.pem",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", d / "server.key", "-out", d / "server.csr",
        )  # fmt: skip
        (d / "server.ext").write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
            "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
        )
        _openssl(
            "x509", "-req", "-in", d / "server.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", d / "server.ext", "-out", d / "server.crt",
        )  # fmt: skip
        # a PEM key store: the (PKCS#8) private key, then the certificate
        (d / "server.pem").write_text(
            (d / "server.key").read_text() + (d / "server.crt").read_text()
        )
        plain, controller, secure = self.port, self.port + 1, self.port + 2
        (d / "sasl_ssl.properties").write_text(
            f"listeners=PLAINTEXT://127.0.0.1:{plain},CONTROLLER://127.0.0.1:{controller},"
            f"SASL_SSL://127.0.0.1:{secure}\n"
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{plain},SASL_SSL://127.0.0.1:{secure}\n"
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
            "SASL_SSL:SASL_SSL\n"
            f"sasl.enabled.mechanisms={MECHANISM}\n"
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
            "ssl.keystore.type=PEM\n"
            f"ssl.keystore.location={d / 'server.pem'}\n"
        )
        (d / "scram.txt").write_text(f"{MECHANISM}=[name={USER},password={self.password}]\n")


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    state = tmp_path_factory.mktemp("secure-kafka")
    server = SecureKafka(
        free_port((0, 1, 2), start=22292),
        state / "kafka",
        tls_dir=state / "tls",
        password=f"pw-{uuid.uuid4().hex}",
    )
    server.configure()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _security(broker: SecureKafka, password: str) -> dict[str, Any]:
    return {
        "kafka_bootstrap_servers": broker.secure_bootstrap,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": MECHANISM,
        "kafka_sasl_username": USER,
        "kafka_sasl_password": password,
        "kafka_ssl_cafile": broker.cafile,
    }


def _security_env(broker: SecureKafka, password_file: Path) -> dict[str, str]:
    """The same settings as a Kubernetes pod gets them: variables, the password in a file."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PINPIPE_")},
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": broker.secure_bootstrap,
        "PINPIPE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "PINPIPE_KAFKA_SASL_MECHANISM": MECHANISM,
        "PINPIPE_KAFKA_SASL_USERNAME": USER,
        "PINPIPE_KAFKA_SASL_PASSWORD_FILE": str(password_file),
        "PINPIPE_KAFKA_SSL_CAFILE": str(broker.cafile),
        "PINPIPE_LOG_LEVEL": "INFO",
    }


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        if process.alive:
            process.kill()


@pytest.fixture
def threads() -> Iterator[list[UvicornThread]]:
    started: list[UvicornThread] = []
    yield started
    for server in reversed(started):
        server.stop()


def _post(ind: int) -> dict[RecordType, dict[str, Any]]:
    """One real post of the sample (pin, geo and user), renumbered to ``ind``."""
    post: dict[RecordType, dict[str, Any]] = {}
    for record_type in RECORD_TYPES:
        path = SHARED_DATA / "raw_union" / f"{SAMPLE_FILES[record_type]}.jsonl"
        row = orjson.loads(path.read_text().splitlines()[0])
        row["index" if record_type == "pin" else "ind"] = ind
        post[record_type] = row
    return post


def test_every_kind_of_client_connects_over_sasl_ssl_and_a_post_goes_through(
    secure_kafka: SecureKafka,
    tmp_path: Path,
    unique: str,
    processes: list[ServiceProcess],
    threads: list[UvicornThread],
) -> None:
    security = _security(secure_kafka, secure_kafka.password)
    prefix = f"s{unique}"
    common = {**security, "topic_prefix": prefix, "topic_partitions": 2}
    lake_url = f"file://{tmp_path / 'lake'}"

    # the aggregator (Faust) in a process of its own, configured as in Kubernetes
    password_file = tmp_path / "password"
    password_file.write_text(secure_kafka.password + "\n")  # as `echo` writes a Secret
    aggregator = ServiceProcess(
        "aggregator",
        {
            **_security_env(secure_kafka, password_file),
            "PINPIPE_TOPIC_PARTITIONS": "2",
            "PINPIPE_AGGREGATOR_APP_ID": f"aggregator-{unique}",
            "PINPIPE_AGGREGATOR_DATADIR": str(tmp_path / "aggregator"),
        },
        tmp_path / "aggregator.log",
        "PINPIPE_AGGREGATOR_PORT",
    )
    processes.append(aggregator.launch())

    # the ingest API (admin, producer, consumers), the cleaner (admin, consumer, transactional
    # producers) and the sink (consumer, producer) in this process: ready = connected
    for app in (
        create_ingest(IngestSettings(**common)),
        create_cleaner(
            CleanerSettings(
                **common,
                cleaner_app_id=f"cleaner-{unique}",
                cleaner_raw_topic_pattern=rf"^{prefix}\.\w+$",
            )
        ),
        create_sink(
            S3SinkSettings(
                **common,
                lake_url=lake_url,
                s3_sink_group_id=f"sink-{unique}",
                s3_sink_raw_topic_pattern="",
                s3_sink_max_open_seconds=1.0,
            )
        ),
    ):
        server = UvicornThread(app, free_port(start=25000))
        threads.append(server)
        server.start(ready_path="/readyz", timeout=90)
    ingest = threads[0]

    ind = 7_000_000 + int(unique[:5], 16)
    post = _post(ind)
    for record_type, record in post.items():
        response = httpx.post(
            f"{ingest.url}/topics/{prefix}.{record_type}",
            content=orjson.dumps({"records": [{"value": record}]}),
            headers=JSON_V2,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["offsets"][0]["error_code"] is None

    # cleaned (transactions), then read back by the sink into the lake's clean zone
    lake = S3SinkSettings(lake_url=lake_url).open_lake()

    def in_lake() -> set[str]:
        rows = zone_rows(lake, "clean", ["ind", "_topic"])
        return {row["_topic"] for row in rows if row["ind"] == ind}

    assert wait_until(
        lambda: in_lake() == set(clean_topics()), timeout=60, what="the post in the clean zone"
    )

    # Faust's consumer (and its changelog producer) over SASL_SSL too
    wait_until(aggregator._ready, timeout=90, what=f"aggregator ready (log: {aggregator.log})")
    wait_until(
        lambda: aggregator.metric("pinpipe_aggregator_posts") == 1,
        timeout=60,
        what="the post in the aggregator's table",
    )

    # and the shared admin helper, with the same connection
    topics = asyncio.run(list_topics(S3SinkSettings(**security).kafka_connection()))
    assert {f"{prefix}.{t}" for t in RECORD_TYPES} | set(clean_topics()) <= set(topics)


def test_a_wrong_password_keeps_services_up_and_not_ready_saying_why(
    secure_kafka: SecureKafka, tmp_path: Path, unique: str, processes: list[ServiceProcess]
) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text(f"not-{secure_kafka.password}")
    env = _security_env(secure_kafka, wrong)
    cleaner = ServiceProcess(
        "cleaner",
        {**env, "PINPIPE_CLEANER_APP_ID": f"cleaner-{unique}"},
        tmp_path / "cleaner.log",
        "PINPIPE_CLEANER_PORT",
        port=free_port(start=24500),  # launched together: ports of their own
    )
    aggregator = ServiceProcess(
        "aggregator",
        {
            **env,
            "PINPIPE_AGGREGATOR_APP_ID": f"aggregator-{unique}",
            "PINPIPE_AGGREGATOR_DATADIR": str(tmp_path / "aggregator"),
        },
        tmp_path / "aggregator.log",
        "PINPIPE_AGGREGATOR_PORT",
        port=free_port(start=26500),
    )
    for process in (cleaner, aggregator):
        processes.append(process.launch())

    def says_authentication_failed(process: ServiceProcess) -> bool:
        assert process.alive, f"{process.command} exited:\n{process.log.read_text()[-3000:]}"
        return "authentication failed" in process.log.read_text().lower()

    for process in (cleaner, aggregator):
        wait_until(
            functools.partial(says_authentication_failed, process),
            timeout=60,
            what=f"{process.command} to log that authentication failed",
        )

    def readyz(process: ServiceProcess) -> httpx.Response | None:
        try:
            return httpx.get(process.url + "/readyz", timeout=5)
        except httpx.TransportError:
            return None

    def names_authentication(process: ServiceProcess) -> httpx.Response | None:
        response = readyz(process)
        if response is not None and "authentication" in response.text.lower():
            return response
        return None

    # the cleaner's /readyz says why, from its broker watch
    reason = wait_until(
        lambda: names_authentication(cleaner),
        timeout=30,
        what="the cleaner's /readyz to name the failed authentication",
    )
    assert reason.status_code == 503
    aggregator_ready = wait_until(
        lambda: readyz(aggregator), timeout=30, what="the aggregator's /readyz"
    )
    assert aggregator_ready.status_code == 503
    assert cleaner.alive and aggregator.alive
    assert httpx.get(cleaner.url + "/healthz", timeout=5).status_code == 200
