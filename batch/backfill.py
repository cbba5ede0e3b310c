"""``pinpipe backfill``: re-clean the lake's raw zone into a clean zone with Spark.

Spark distributes the raw zone's files; each task reads one raw file, decodes its values and
cleans them with the vectorised rules (:mod:`shared.cleaning_arrow`: Arrow compute, no Python
per row), and writes one clean file under the same name in the clean zone
(``clean/<type>/date=D/<raw topic>+<partition>+<start>.parquet``). The clean rows keep the raw
records' ``_topic, _partition, _offset, _ingested_at``. A re-run rewrites the same files with
the same rows: idempotent. Records that do not decode or clean are counted by reason (the
stream's DLQ already holds them).

The output lake should hold no stream-written clean zone of the same posts (their offsets are
of another topic): backfill into an empty clean zone or another lake (``--out``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import SecretStr

from batch.config import BatchSettings
from shared.cleaning import BadRecord, clean
from shared.cleaning_arrow import clean_arrow, decode_raw
from shared.lake import Lake, open_lake
from shared.lake_schema import CLEAN_RECORD_SCHEMAS, CLEAN_SCHEMAS, META_FIELDS, clean_row
from shared.lake_writer import parquet_bytes, write_durably
from shared.profiles import Profile
from shared.topics import RECORD_TYPES, RecordType

_META_NAMES = [f.name for f in META_FIELDS]


@dataclass(frozen=True)
class LakeAddress:
    """What a Spark task needs to open a lake (picklable; secrets as plain text in memory)."""

    url: str
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    @classmethod
    def of(cls, settings: BatchSettings, url: str) -> LakeAddress:
        def plain(secret: SecretStr | None) -> str | None:
            return secret.get_secret_value() if secret else None

        return cls(
            url,
            settings.s3_endpoint_url,
            plain(settings.s3_access_key_id),
            plain(settings.s3_secret_access_key),
        )

    def open(self) -> Lake:
        return open_lake(
            self.url,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_access_key_id=SecretStr(self.s3_access_key_id) if self.s3_access_key_id else None,
            s3_secret_access_key=(
                SecretStr(self.s3_secret_access_key) if self.s3_secret_access_key else None
            ),
        )


@dataclass
class FileResult:
    source: str
    rows_in: int = 0
    rows_out: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


def raw_files(lake: Lake, since: date | None, until: date | None) -> list[tuple[RecordType, str]]:
    """The raw zone's files, by type, within [since, until] (the files' dates)."""
    found = []
    for record_type in RECORD_TYPES:
        for path in sorted(lake.fs.glob(lake.path(f"raw/{record_type}/date=*/*.parquet"))):
            day = date.fromisoformat(path.split("/date=")[1].split("/")[0])
            if (since is None or day >= since) and (until is None or day <= until):
                found.append((record_type, path[len(lake.root) + 1 :]))
    return found


def backfill_file(
    source: LakeAddress,
    out: LakeAddress,
    record_type: RecordType,
    relative: str,
    profile: Profile,
    compression: str = "zstd",
    vectorised: bool = True,
) -> FileResult:
    """Clean one raw file into its clean file (the unit of work of a Spark task)."""
    lake_in, lake_out = source.open(), out.open()
    with lake_in.fs.open(lake_in.path(relative), "rb") as handle:
        raw = pq.read_table(handle)
    values = [v or b"" for v in raw.column("value").to_pylist()]
    result = FileResult(relative, rows_in=len(values))
    cleaner = _clean_vectorised if vectorised else _clean_per_row
    records, rows = cleaner(record_type, values, profile, result.rejected)
    meta = raw.select(_META_NAMES).take(pa.array(rows, pa.int64()))
    table = pa.Table.from_arrays(
        [*records.columns, *meta.columns], schema=CLEAN_SCHEMAS[record_type]
    )
    result.rows_out = table.num_rows
    write_durably(
        lake_out, relative.replace("raw/", "clean/", 1), parquet_bytes(table, compression)
    )
    return result


def _clean_vectorised(
    record_type: RecordType, values: list[bytes], profile: Profile, rejected: Counter[str]
) -> tuple[pa.Table, list[int]]:
    decoded = decode_raw(record_type, values)
    rejected.update(decoded.rejected_reasons)
    cleaned = clean_arrow(record_type, decoded.table, profile)
    rejected.update(cleaned.rejected_reasons.to_pylist())
    rows = [decoded.rows[i] for i in cleaned.rows.to_pylist()]
    return cleaned.table, rows


def _clean_per_row(
    record_type: RecordType, values: list[bytes], profile: Profile, rejected: Counter[str]
) -> tuple[pa.Table, list[int]]:
    """The benchmark's baseline: the per-record rules, one Python call per row."""
    import orjson

    records, rows = [], []
    for i, value in enumerate(values):
        try:
            cleaned = clean(record_type, orjson.loads(value), profile)
        except (BadRecord, orjson.JSONDecodeError) as exc:
            rejected[getattr(exc, "reason", "not_json")] += 1
            continue
        records.append(clean_row(record_type, orjson.dumps(cleaned)))
        rows.append(i)
    return pa.Table.from_pylist(records, schema=CLEAN_RECORD_SCHEMAS[record_type]), rows


def run_backfill(
    settings: BatchSettings,
    lake_url: str,
    out_url: str | None,
    since: date | None,
    until: date | None,
    profile: Profile,
    report: Callable[[str], None] = print,
    vectorised: bool = True,
) -> list[FileResult]:
    """Backfill every raw file in range, in parallel on Spark; report progress and a summary."""
    from batch.spark import spark_session

    source = LakeAddress.of(settings, lake_url)
    out = LakeAddress.of(settings, out_url or lake_url)
    files = raw_files(source.open(), since, until)
    if not files:
        report("no raw files in range: nothing to do")
        return []
    report(f"backfilling {len(files)} raw files ({profile} profile) into {out.url}")
    spark = spark_session("pinpipe-backfill", settings, progress=True)
    started = time.perf_counter()

    def task(item: tuple[RecordType, str]) -> FileResult:
        return backfill_file(source, out, item[0], item[1], profile, vectorised=vectorised)

    results: list[FileResult] = (
        spark.sparkContext.parallelize(files, numSlices=len(files)).map(task).collect()
    )
    elapsed = time.perf_counter() - started
    rows_in = sum(r.rows_in for r in results)
    rows_out = sum(r.rows_out for r in results)
    rejected: Counter[str] = Counter()
    for r in results:
        rejected.update(r.rejected)
    report(
        f"done: {len(results)} files, {rows_in} raw rows → {rows_out} clean rows in "
        f"{elapsed:.1f} s ({rows_in / max(elapsed, 1e-9):,.0f} rows/s)"
        + (f"; rejected: {dict(rejected)}" if rejected else "")
    )
    return results
