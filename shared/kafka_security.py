"""How pinpipe connects to Kafka: the brokers and the security (TLS, SASL) in one value.

:class:`KafkaConnection` is built once per service from its settings
(:meth:`shared.settings.PinpipeSettings.kafka_connection`) and handed to whatever builds a Kafka
client: :meth:`KafkaConnection.client_kwargs` gives the keyword arguments of every aiokafka
client (producer, consumer, admin, the low-level client), :meth:`KafkaConnection.faust_broker`
and :meth:`KafkaConnection.faust_credentials` give Faust's ``broker=`` and
``broker_credentials=``. Nothing else turns security settings into client arguments.

This module reads no environment and no settings: it only knows files named to it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr

if TYPE_CHECKING:
    from faust.auth import Credentials

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
TLS_PROTOCOLS: tuple[SecurityProtocol, ...] = ("SSL", "SASL_SSL")
SASL_PROTOCOLS: tuple[SecurityProtocol, ...] = ("SASL_PLAINTEXT", "SASL_SSL")


class KafkaSecurityError(ValueError):
    """The Kafka security settings do not fit together, or name a file that is not there."""


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how to talk to them. ``sasl_password`` never shows in a repr.

    TLS (``SSL``, ``SASL_SSL``) checks the broker's certificate and host name against
    ``ssl_cafile`` (the system's CAs when None); ``ssl_certfile``/``ssl_keyfile`` are a client
    certificate for brokers that ask for one (mutual TLS)."""

    bootstrap_servers: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_security(
            self.security_protocol,
            self.sasl_mechanism,
            self.sasl_username,
            self.sasl_password is not None,
            self.ssl_cafile,
            self.ssl_certfile,
            self.ssl_keyfile,
            self.ssl_key_password is not None,
        )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path: Path | None = getattr(self, name)
            if path is not None and not path.is_file():
                raise KafkaSecurityError(f"PINPIPE_KAFKA_{name.upper()}: no file at {path}")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in TLS_PROTOCOLS

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in SASL_PROTOCOLS

    def ssl_context(self) -> ssl.SSLContext | None:
        """A new TLS context (None without TLS): verifies the broker, host name included."""
        if not self.uses_tls:
            return None
        context: ssl.SSLContext = create_ssl_context(
            cafile=self.ssl_cafile,
            certfile=self.ssl_certfile,
            keyfile=self.ssl_keyfile,
            password=self.ssl_key_password.get_secret_value() if self.ssl_key_password else None,
        )
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """The keyword arguments every aiokafka client takes to reach the brokers securely:
        ``AIOKafkaProducer(**conn.client_kwargs(), acks="all", …)``."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            assert self.sasl_password is not None  # checked in __post_init__
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return kwargs

    def faust_broker(self) -> str:
        """Faust's ``broker=``: ``host1:9092,host2:9092`` → ``kafka://host1:9092;kafka://…``."""
        return ";".join(
            f"kafka://{server.strip()}"
            for server in self.bootstrap_servers.split(",")
            if server.strip()
        )

    def faust_credentials(self) -> Credentials | None:
        """Faust's ``broker_credentials=`` (None for PLAINTEXT)."""
        from faust.auth import SASLCredentials, SSLCredentials

        if self.uses_sasl:
            assert self.sasl_password is not None  # checked in __post_init__
            # Faust takes SASL_SSL when a context is given, SASL_PLAINTEXT otherwise
            return SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password.get_secret_value(),
                mechanism=self.sasl_mechanism,
                ssl_context=self.ssl_context(),
            )
        context = self.ssl_context()
        return None if context is None else SSLCredentials(context)


def check_security(
    protocol: SecurityProtocol,
    mechanism: SaslMechanism | None,
    username: str | None,
    has_password: bool,
    cafile: Path | None,
    certfile: Path | None,
    keyfile: Path | None,
    has_key_password: bool,
) -> None:
    """Raise :class:`KafkaSecurityError` naming the settings when they do not fit together:
    SASL needs a mechanism, a user name and a password; SASL and TLS settings are refused
    under a protocol that would ignore them (a forgotten PINPIPE_KAFKA_SECURITY_PROTOCOL)."""
    if protocol in SASL_PROTOCOLS:
        missing = [
            name
            for name, given in (
                ("PINPIPE_KAFKA_SASL_MECHANISM", mechanism is not None),
                ("PINPIPE_KAFKA_SASL_USERNAME", bool(username)),
                ("PINPIPE_KAFKA_SASL_PASSWORD (or _FILE)", has_password),
            )
            if not given
        ]
        if missing:
            raise KafkaSecurityError(
                f"PINPIPE_KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}"
            )
    else:
        ignored = [
            name
            for name, given in (
                ("PINPIPE_KAFKA_SASL_MECHANISM", mechanism is not None),
                ("PINPIPE_KAFKA_SASL_USERNAME", bool(username)),
                ("PINPIPE_KAFKA_SASL_PASSWORD", has_password),
            )
            if given
        ]
        if ignored:
            raise KafkaSecurityError(
                f"{', '.join(ignored)} set but PINPIPE_KAFKA_SECURITY_PROTOCOL={protocol}: "
                "use SASL_SSL (or SASL_PLAINTEXT) to authenticate"
            )
    if protocol not in TLS_PROTOCOLS:
        ignored = [
            name
            for name, given in (
                ("PINPIPE_KAFKA_SSL_CAFILE", cafile is not None),
                ("PINPIPE_KAFKA_SSL_CERTFILE", certfile is not None),
                ("PINPIPE_KAFKA_SSL_KEYFILE", keyfile is not None),
            )
            if given
        ]
        if ignored:
            raise KafkaSecurityError(
                f"{', '.join(ignored)} set but PINPIPE_KAFKA_SECURITY_PROTOCOL={protocol}: "
                "use SSL or SASL_SSL for TLS"
            )
    if (keyfile is not None or has_key_password) and certfile is None:
        raise KafkaSecurityError(
            "PINPIPE_KAFKA_SSL_KEYFILE and PINPIPE_KAFKA_SSL_KEY_PASSWORD need "
            "PINPIPE_KAFKA_SSL_CERTFILE (the client certificate)"
        )
