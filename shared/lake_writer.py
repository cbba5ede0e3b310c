"""Durable Parquet writes to the lake: nothing partial is ever visible under a final name.

``file://``: write a hidden temporary file in the same folder, fsync it, rename it over the
final name, fsync the folder. ``s3://``: one PUT of the whole object (S3 makes it visible only
when complete).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shared.lake import Lake


def parquet_bytes(table: pa.Table, compression: str) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression=compression)
    return buffer.getvalue()


def write_durably(lake: Lake, relative: str, data: bytes) -> None:
    """Publish ``data`` under ``relative`` in the lake, atomically and durably."""
    if lake.is_s3:
        lake.fs.pipe_file(lake.path(relative), data)
        return
    final = Path(lake.path(relative))
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
