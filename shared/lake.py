"""The lake: its layout (DESIGN.md: Lake layout) and the filesystem behind a lake URL.

``<lake>/<zone>/<type>/date=YYYY-MM-DD/<topic>+<partition>+<start_offset:020d>.parquet``.
``file://`` lakes use the local filesystem; ``s3://bucket/prefix`` lakes use s3fs against any
S3-compatible endpoint (path-style addressing). Both are fsspec filesystems, so the sink,
pyarrow and DuckDB (through ``register_filesystem``) all read and write the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import fsspec
from pydantic import SecretStr

from shared.topics import RecordType

Zone = Literal["raw", "clean"]
ZONES: tuple[Zone, ...] = ("raw", "clean")


def file_name(topic: str, partition: int, start_offset: int) -> str:
    """A lake file's name: the first offset it holds makes a rewrite replace itself."""
    return f"{topic}+{partition}+{start_offset:020d}.parquet"


def relative_path(
    zone: Zone, record_type: RecordType, day: date, topic: str, partition: int, start_offset: int
) -> str:
    return (
        f"{zone}/{record_type}/date={day.isoformat()}/{file_name(topic, partition, start_offset)}"
    )


@dataclass(frozen=True)
class Lake:
    """A lake URL opened: an fsspec filesystem and the root path inside it."""

    url: str
    fs: fsspec.AbstractFileSystem
    root: str  # no scheme: "/abs/dir" for file://, "bucket/prefix" for s3://

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")

    def path(self, relative: str) -> str:
        """The filesystem path of a path relative to the lake root."""
        return f"{self.root}/{relative}"

    def uri(self, relative: str) -> str:
        """A URI DuckDB can read (``s3://`` needs the filesystem registered)."""
        return f"s3://{self.path(relative)}" if self.is_s3 else self.path(relative)

    def check(self) -> None:
        """Raise unless the lake's store answers and its bucket (or folder) exists."""
        if self.is_s3:
            self.fs.ls(self.root.split("/", 1)[0])  # the bucket's top level; raises if away
        elif not self.fs.isdir(self.root):
            raise FileNotFoundError(f"{self.root} is not a folder")

    def zone_glob(self, zone: Zone, record_type: RecordType) -> str:
        return self.uri(f"{zone}/{record_type}/date=*/*.parquet")


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

        fs = s3fs.S3FileSystem(
            key=s3_access_key_id.get_secret_value() if s3_access_key_id else None,
            secret=s3_secret_access_key.get_secret_value() if s3_secret_access_key else None,
            endpoint_url=s3_endpoint_url,
            client_kwargs={"region_name": s3_region},
            config_kwargs={"s3": {"addressing_style": "path"}},
            use_listings_cache=False,
        )
        return Lake(url=url, fs=fs, root=url[len("s3://") :])
    raise ValueError(f"unsupported lake URL {url!r}: use file://… or s3://bucket/prefix")
