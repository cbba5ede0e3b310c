"""The settings base every service's ``config.py`` extends.

Environment variables carry the ``PINPIPE_`` prefix. Settings are frozen; secrets are
``SecretStr`` and :meth:`PinpipeSettings.redacted` gives a dump safe for the start-up log line.
Only services' ``config.py`` modules instantiate settings: nothing else reads the environment.

Every secret (a ``SecretStr`` setting) can also come from a file, as Kubernetes mounts Secrets:
``PINPIPE_<NAME>_FILE=/path`` sets ``PINPIPE_<NAME>`` to the file's content (one trailing
newline dropped). Setting both is an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self, get_args

from pydantic import SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from shared.kafka_security import (
    KafkaConnection,
    SaslMechanism,
    SecurityProtocol,
    check_security,
)
from shared.lake import Lake, open_lake
from shared.retry import Backoff

DEFAULT_VAR_DIR = Path("var")
# settings renamed to one name per concept (issue 18): the old variable is refused, not ignored
_SINK_SETTINGS = (
    "GROUP_ID", "HOST", "PORT", "ROLL_BYTES", "ROLL_SECONDS", "MAX_OPEN_SECONDS", "COMPRESSION",
    "CLEAN_TOPIC_PATTERN", "RAW_TOPIC_PATTERN",
)  # fmt: skip
RENAMED = {
    **{f"PINPIPE_SINK_{name}": f"PINPIPE_S3_SINK_{name}" for name in _SINK_SETTINGS},
    **{
        f"PINPIPE_{service}_{old}_{what}": f"PINPIPE_{service}_{what}"
        for service, old in (("CLEANER", "WEB"), ("AGGREGATOR", "WEB"), ("EMULATOR", "METRICS"))
        for what in ("HOST", "PORT")
    },
}


class PinpipeSettings(BaseSettings):
    """What every service needs: the broker, the topic prefix, the lake, logging."""

    # hide_input_in_errors: a validation error must not print the secrets it was given
    model_config = SettingsConfigDict(
        env_prefix="PINPIPE_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # how to talk to the brokers (README: Kafka security); the local broker is PLAINTEXT
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None  # the CA bundle the brokers' certificates chain to
    kafka_ssl_certfile: Path | None = None  # a client certificate, for mutual TLS
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    topic_prefix: str = "pinterest"
    topic_partitions: int = 4
    topic_replication_factor: int = 1  # of the topics pinpipe creates (3 on a real cluster)
    lake_url: str = f"file://{(DEFAULT_VAR_DIR / 'lake').resolve()}"
    s3_endpoint_url: str | None = None
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    log_level: str = "INFO"
    # waiting out a dependency that is away (Kafka, S3, the source database, the ingest API)
    retry_max_backoff_seconds: float = 10.0  # the longest wait between two attempts
    give_up_after_seconds: float = 0.0  # stop (exit non-zero) after failing this long; 0: never

    @field_validator("lake_url")
    @classmethod
    def _lake_url_scheme(cls, value: str) -> str:
        if not (value.startswith("file://") or value.startswith("s3://")):
            raise ValueError("PINPIPE_LAKE_URL must start with file:// or s3://")
        return value.rstrip("/")

    @model_validator(mode="before")
    @classmethod
    def _no_renamed_variables(cls, values: Any) -> Any:
        renamed = sorted(old for old in RENAMED if old in os.environ)
        if renamed:
            raise ValueError(
                "renamed settings: " + ", ".join(f"{old} is now {RENAMED[old]}" for old in renamed)
            )
        return values

    @model_validator(mode="after")
    def _kafka_security_fits(self) -> Self:
        check_security(
            self.kafka_security_protocol,
            self.kafka_sasl_mechanism,
            self.kafka_sasl_username,
            self.kafka_sasl_password is not None,
            self.kafka_ssl_cafile,
            self.kafka_ssl_certfile,
            self.kafka_ssl_keyfile,
            self.kafka_ssl_key_password is not None,
        )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            SecretFiles(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    def kafka_connection(self) -> KafkaConnection:
        """How this service reaches Kafka: give it to every client it builds
        (``shared/kafka_security.py``). Raises when a TLS file is missing."""
        return KafkaConnection(
            bootstrap_servers=self.kafka_bootstrap_servers,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
            ssl_key_password=self.kafka_ssl_key_password,
        )

    def redacted(self) -> dict[str, Any]:
        """Every setting, secrets shown as '**********', for the start-up log line."""
        return {
            name: (str(value) if isinstance(value, SecretStr) else value)
            for name, value in self.model_dump().items()
        }

    def backoff(self) -> Backoff:
        """How this service waits for a dependency that is away (see shared/retry.py)."""
        return Backoff(
            first=min(0.5, self.retry_max_backoff_seconds),
            cap=self.retry_max_backoff_seconds,
            give_up_after=self.give_up_after_seconds or None,
        )

    def open_lake(self, url: str | None = None) -> Lake:
        """The lake of ``PINPIPE_LAKE_URL`` (or ``url``) with this configuration's S3 access."""
        return open_lake(
            url or self.lake_url,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_access_key_id=self.s3_access_key_id,
            s3_secret_access_key=self.s3_secret_access_key,
            s3_region=self.s3_region,
        )


class SecretFiles(PydanticBaseSettingsSource):
    """``PINPIPE_<NAME>_FILE``: the value of the secret setting ``<name>`` is that file's
    content (one trailing newline dropped), for Secrets mounted as files."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # every value comes from __call__

    def __call__(self) -> dict[str, Any]:
        prefix = str(self.config.get("env_prefix", ""))
        environ = {name.upper(): value for name, value in os.environ.items()}
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            if not _is_secret(field):
                continue
            variable = f"{prefix}{name}".upper()
            path = environ.get(f"{variable}_FILE")
            if not path:
                continue
            if variable in environ:
                raise SettingsError(f"set {variable} or {variable}_FILE, not both")
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise SettingsError(f"{variable}_FILE: cannot read {path}: {exc}") from exc
            values[name] = text.removesuffix("\n").removesuffix("\r")
        return values


def _is_secret(field: FieldInfo) -> bool:
    return field.annotation is SecretStr or SecretStr in get_args(field.annotation)
