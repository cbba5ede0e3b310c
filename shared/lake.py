"""The lake: where its tables are (DESIGN.md: Lake layout) and the store behind a lake URL.

Every zone and record type is a Delta table at ``<lake>/<zone>/<type>`` (shared/lake_tables.py),
partitioned by ``date``, the UTC day of the records' Kafka timestamps. ``file://`` lakes live on
the local filesystem; ``s3://bucket/prefix`` lakes on any S3-compatible endpoint (path-style).
A :class:`Lake` carries both ways in: an fsspec filesystem (listing, the legacy Parquet layout
that ``pinpipe lake migrate`` reads) and the storage options delta-rs takes.

The lake before Delta (``LEGACY_FILES``) was plain Parquet files at
``<lake>/<zone>/<type>/date=YYYY-MM-DD/<topic>+<partition>+<start_offset:020d>.parquet``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import fsspec
from pydantic import SecretStr

from shared.topics import RECORD_TYPES, RecordType

Zone = Literal["raw", "clean"]
ZONES: tuple[Zone, ...] = ("raw", "clean")


# the files of a zone and type in the lake before Delta (read by `pinpipe lake migrate`)
LEGACY_FILES = "{zone}/{record_type}/date=*/*+*+*.parquet"


def table_path(zone: Zone, record_type: RecordType) -> str:
    """Where a zone's table of one record type is, relative to the lake root."""
    return f"{zone}/{record_type}"


# every table of the zones, raw first
ZONE_TABLES: tuple[str, ...] = tuple(table_path(z, t) for z in ZONES for t in RECORD_TYPES)


@dataclass(frozen=True)
class Lake:
    """A lake URL opened: an fsspec filesystem and the root path inside it."""

    url: str
    fs: fsspec.AbstractFileSystem
    root: str  # no scheme: "/abs/dir" for file://, "bucket/prefix" for s3://
    # delta-rs' (object_store's) options for this store: endpoint, keys, region
    storage_options: dict[str, str] = field(default_factory=dict)

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")

    def path(self, relative: str) -> str:
        """The filesystem path of a path relative to the lake root."""
        return f"{self.root}/{relative}"

    def check(self) -> None:
        """Raise unless the lake's store answers and its bucket (or folder) exists."""
        if self.is_s3:
            self.fs.ls(self.root.split("/", 1)[0])  # the bucket's top level; raises if away
        elif not self.fs.isdir(self.root):
            raise FileNotFoundError(f"{self.root} is not a folder")

    def table_uri(self, relative: str) -> str:
        """The URI delta-rs opens for the table at ``relative``."""
        return f"s3://{self.path(relative)}" if self.is_s3 else self.path(relative)


def open_lake(
    url: str,
    *,
    s3_endpoint_url: str | None = None,
    s3_access_key_id: SecretStr | None = None,
    s3_secret_access_key: SecretStr | None = None,
    s3_region: str = "us-east-1",
) -> Lake:
    """Open a ``file://`` or ``s3://`` lake URL."""
    url = url.rstrip("/")
    if url.startswith("file://"):
        root = url[len("file://") :]
        fs = fsspec.filesystem("file", auto_mkdir=True)
        fs.makedirs(root, exist_ok=True)
        return Lake(url=url, fs=fs, root=root)
    if url.startswith("s3://"):
        import s3fs  # heavy; only s3 lakes need it

        key = s3_access_key_id.get_secret_value() if s3_access_key_id else None
        secret = s3_secret_access_key.get_secret_value() if s3_secret_access_key else None
        fs = s3fs.S3FileSystem(
            key=key,
            secret=secret,
            endpoint_url=s3_endpoint_url,
            client_kwargs={"region_name": s3_region},
            config_kwargs={"s3": {"addressing_style": "path"}},
            use_listings_cache=False,
        )
        options = {"AWS_REGION": s3_region, "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false"}
        if s3_endpoint_url:
            options["AWS_ENDPOINT_URL"] = s3_endpoint_url
            options["AWS_ALLOW_HTTP"] = str(s3_endpoint_url.startswith("http://")).lower()
        if key and secret:
            options["AWS_ACCESS_KEY_ID"], options["AWS_SECRET_ACCESS_KEY"] = key, secret
        return Lake(url=url, fs=fs, root=url[len("s3://") :], storage_options=options)
    raise ValueError(f"unsupported lake URL {url!r}: use file://… or s3://bucket/prefix")
