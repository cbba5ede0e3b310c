"""Kafka security settings: what fits together, secrets from files, and the client arguments
and Faust credentials one KafkaConnection gives."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import AuthProtocol
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsError

from services.cleaner.config import CleanerSettings
from services.emulator.config import EmulatorSettings
from shared.kafka_security import KafkaConnection, KafkaSecurityError
from shared.settings import PinpipeSettings


def _ca(folder: Path) -> Path:
    """A self-signed CA certificate (PEM)."""
    ca = folder / "ca.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=test CA", "-keyout", str(folder / "ca.key"), "-out", str(ca)),
        ],
        check=True,
        capture_output=True,
    )
    return ca


def test_plaintext_by_default_gives_only_the_brokers() -> None:
    kafka = PinpipeSettings(kafka_bootstrap_servers="a:1, b:2").kafka_connection()
    assert kafka.client_kwargs() == {
        "bootstrap_servers": "a:1, b:2",
        "security_protocol": "PLAINTEXT",
    }
    assert kafka.faust_broker() == "kafka://a:1;kafka://b:2"
    assert kafka.faust_credentials() is None


def test_sasl_ssl_gives_aiokafka_and_faust_the_same_credentials(tmp_path: Path) -> None:
    ca = _ca(tmp_path)
    kafka = PinpipeSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="alice",
        kafka_sasl_password=SecretStr("alice-secret"),
        kafka_ssl_cafile=ca,
    ).kafka_connection()
    kwargs = kafka.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == (
        "alice",
        "alice-secret",
    )
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["ssl_context"].check_hostname
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    credentials = kafka.faust_credentials()
    assert isinstance(credentials, SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_SSL
    assert (credentials.username, credentials.password) == ("alice", "alice-secret")
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert "alice-secret" not in repr(kafka) + repr(credentials)


def test_sasl_plaintext_and_ssl_alone() -> None:
    sasl = KafkaConnection(
        "k:9092", "SASL_PLAINTEXT", "PLAIN", "bob", SecretStr("pw")
    ).faust_credentials()
    assert isinstance(sasl, SASLCredentials) and sasl.protocol is AuthProtocol.SASL_PLAINTEXT
    assert (
        "ssl_context"
        not in KafkaConnection(
            "k:9092", "SASL_PLAINTEXT", "PLAIN", "bob", SecretStr("pw")
        ).client_kwargs()
    )
    tls = KafkaConnection("k:9093", "SSL")
    assert isinstance(tls.faust_credentials(), SSLCredentials)
    assert tls.client_kwargs()["security_protocol"] == "SSL"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "PINPIPE_KAFKA_SASL_USERNAME"),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_username": "u",
            },
            "PINPIPE_KAFKA_SASL_PASSWORD",
        ),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_username": "u",
                "kafka_sasl_password": "p",
            },
            "PINPIPE_KAFKA_SASL_MECHANISM",
        ),
        ({"kafka_sasl_username": "u", "kafka_sasl_password": "p"}, "use SASL_SSL"),
        ({"kafka_ssl_cafile": "/ca.pem"}, "use SSL or SASL_SSL"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": "/k.pem"},
            "PINPIPE_KAFKA_SSL_CERTFILE",
        ),
    ],
)
def test_settings_that_do_not_fit_together_are_refused_by_name(
    settings: dict[str, str], named: str
) -> None:
    with pytest.raises(ValidationError, match=named) as raised:
        PinpipeSettings(**settings)  # type: ignore[arg-type]  # strings, as from the environment
    assert "input_value" not in str(raised.value), "a validation error must not echo secrets"


def test_a_missing_ca_file_is_named_at_start_up(tmp_path: Path) -> None:
    settings = PinpipeSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "no.pem")
    with pytest.raises(KafkaSecurityError, match="PINPIPE_KAFKA_SSL_CAFILE: no file at"):
        settings.kafka_connection()


def test_a_secret_comes_from_a_file_without_its_trailing_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = tmp_path / "password"
    password.write_text("from-a-file\n")
    monkeypatch.setenv("PINPIPE_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("PINPIPE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("PINPIPE_KAFKA_SASL_USERNAME", "carol")
    monkeypatch.setenv("PINPIPE_KAFKA_SASL_PASSWORD_FILE", str(password))
    settings = CleanerSettings()
    assert settings.kafka_sasl_password == SecretStr("from-a-file")
    assert settings.kafka_connection().client_kwargs()["sasl_plain_password"] == "from-a-file"
    assert "from-a-file" not in str(settings.redacted())
    # any secret setting, in any service: the emulator's database URL
    url = tmp_path / "db"
    url.write_text("sqlite:////tmp/file.db")
    monkeypatch.setenv("PINPIPE_SOURCE_DB_URL_FILE", str(url))
    assert EmulatorSettings().source_db_url.get_secret_value() == "sqlite:////tmp/file.db"


def test_a_secret_given_twice_or_from_a_missing_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINPIPE_EMULATOR_API_KEY_FILE", str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match="PINPIPE_EMULATOR_API_KEY_FILE: cannot read"):
        EmulatorSettings()
    (tmp_path / "absent").write_text("k")
    monkeypatch.setenv("PINPIPE_EMULATOR_API_KEY", "k")
    with pytest.raises(SettingsError, match="not both"):
        EmulatorSettings()


def test_a_file_variable_of_a_setting_that_is_no_secret_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINPIPE_TOPIC_PREFIX_FILE", str(tmp_path / "absent"))
    assert PinpipeSettings().topic_prefix == "pinterest"
