"""Records/s and MB/s of one sink process against a minimal loop that does the same work, in
one run; and the number of objects for 100,000 records.

    make bench              (or: .venv/bin/python -m bench.sink_bench --help)

On a Kafka and a SeaweedFS S3 server of its own, the benchmark fills raw topics bench.pin|geo|user
with N real sample rows (cycled, unique inds) and clean topics bench.clean.pin|geo|user with the
same rows cleaned (4 partitions each), then:
0. the ceiling of the Python Kafka client: an aiokafka consumer reading every record once;
1. the sink: `pinpipe s3-sink` on an s3:// lake (zstd; files roll at --roll-mib MiB); rate from the
   group's committed offsets polled every 100 ms, from the first commit to the last;
2. baseline: a minimal loop in this process over the same records: consume (aiokafka getmany),
   decode to Arrow (the sink's own conversion: raw bytes, clean JSON parsed against the schema),
   append to Delta tables in the same bucket with the same number of records per file, each
   commit with its application transaction, then commit the Kafka offsets. No rolling by time,
   no DLQ, no retries, one file at a time: what the sink's work costs without its care.
MB/s counts the Kafka record bytes the sink consumed (key + value). Objects are the Parquet data
files of the tables (the Delta log's own small JSON files are counted apart).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import s3fs
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import SecretStr

from bench.local_stack import ROOT, free_port, local_kafka, local_s3
from bench.progress import sample_rows, watch_group
from services.s3_sink.tables import Columns, to_lake_table
from shared.cleaning import BadRecord, clean
from shared.kafka_admin import ensure_topics
from shared.kafka_security import KafkaConnection
from shared.lake import ZONE_TABLES, Lake, Zone, open_lake, table_path
from shared.lake_tables import Offsets, append, open_table, with_date
from shared.topics import RECORD_TYPES, record_type_of

PARTITIONS = 4
RAW_TOPICS = [f"bench.{t}" for t in RECORD_TYPES]
CLEAN_TOPICS = [f"bench.clean.{t}" for t in RECORD_TYPES]


async def _fill(bootstrap: str, records: int) -> int:
    """``records`` raw records and as many clean ones; returns the bytes produced."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1024 * 1024
    )
    await producer.start()
    total = 0
    try:
        samples = {t: sample_rows(t) for t in RECORD_TYPES}
        futures = []
        for i in range(records):
            record_type = RECORD_TYPES[i % 3]
            row = dict(samples[record_type][(i // 3) % len(samples[record_type])])
            row["index" if record_type == "pin" else "ind"] = i // 3
            raw = orjson.dumps(row)
            try:
                cleaned = orjson.dumps(clean(record_type, row))
            except BadRecord:
                cleaned = orjson.dumps({"ind": i // 3})
            key = str(i // 3).encode()
            total += len(raw) + len(cleaned) + 2 * len(key)
            futures.append(await producer.send(f"bench.{record_type}", raw, key=key))
            futures.append(await producer.send(f"bench.clean.{record_type}", cleaned, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=300_000, help="raw records (default 300000)")
    parser.add_argument("--roll-mib", type=int, default=8, help="file size roll, MiB (8)")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "sink.json")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="pinpipe-bench-"))
    with local_kafka(state) as bootstrap, local_s3(state) as s3:
        fs = s3fs.S3FileSystem(
            key=s3.access_key,
            secret=s3.secret_key,
            endpoint_url=s3.endpoint,
            config_kwargs={"s3": {"addressing_style": "path"}},
        )
        _make_bucket(fs, "bench")
        asyncio.run(
            ensure_topics(KafkaConnection(bootstrap), RAW_TOPICS + CLEAN_TOPICS, PARTITIONS)
        )
        started = time.perf_counter()
        size = asyncio.run(_fill(bootstrap, args.records))
        records = 2 * args.records
        print(
            f"records: {records:,} ({args.records:,} raw + as many clean) in "
            f"{len(RAW_TOPICS + CLEAN_TOPICS)} topics x {PARTITIONS} partitions, "
            f"{size / 1e6:.0f} MB; produced in {time.perf_counter() - started:.1f} s"
        )
        consume_rate = asyncio.run(_consume_only(bootstrap, RAW_TOPICS + CLEAN_TOPICS, records))
        env = {
            **os.environ,
            "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PINPIPE_TOPIC_PARTITIONS": str(PARTITIONS),
            "PINPIPE_LAKE_URL": "s3://bench/lake",
            "PINPIPE_S3_ENDPOINT_URL": s3.endpoint,
            "PINPIPE_S3_ACCESS_KEY_ID": s3.access_key,
            "PINPIPE_S3_SECRET_ACCESS_KEY": s3.secret_key,
            "PINPIPE_S3_SINK_GROUP_ID": "bench-sink",
            "PINPIPE_S3_SINK_PORT": str(free_port(38200)),
            "PINPIPE_S3_SINK_CLEAN_TOPIC_PATTERN": r"^bench\.clean\.(pin|geo|user)$",
            "PINPIPE_S3_SINK_RAW_TOPIC_PATTERN": r"^bench\.(pin|geo|user)$",
            "PINPIPE_S3_SINK_ROLL_BYTES": str(args.roll_mib * 1024 * 1024),
            "PINPIPE_S3_SINK_MAX_OPEN_SECONDS": "5",
            "PINPIPE_LOG_LEVEL": "WARNING",
        }
        with open(state / "sink.log", "ab") as log:
            sink = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "s3-sink"],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
            try:
                sink_rate = asyncio.run(
                    watch_group(bootstrap, "bench-sink", RAW_TOPICS + CLEAN_TOPICS, records, sink)
                )
            finally:
                sink.terminate()
                sink.wait(timeout=60)
        lake = open_lake(
            "s3://bench/lake",
            s3_endpoint_url=s3.endpoint,
            s3_access_key_id=SecretStr(s3.access_key),
            s3_secret_access_key=SecretStr(s3.secret_key),
        )
        files = [
            uri.removeprefix("s3://")
            for relative in ZONE_TABLES
            if (table := open_table(lake, relative)) is not None
            for uri in table.file_uris()
        ]
        log_objects = len(fs.glob("bench/lake/*/*/_delta_log/*"))
        parquet_bytes = sum(fs.size(f) for f in files)
        rows = sum(
            table.to_pyarrow_dataset().count_rows()
            for relative in ZONE_TABLES
            if (table := open_table(lake, relative)) is not None
        )
        if rows != records:
            raise RuntimeError(f"the lake holds {rows} rows, not {records}")
        baseline_lake = open_lake(
            "s3://bench/minimal",
            s3_endpoint_url=s3.endpoint,
            s3_access_key_id=SecretStr(s3.access_key),
            s3_secret_access_key=SecretStr(s3.secret_key),
        )
        per_file = max(1, records // max(1, len(files)))
        baseline_rate = asyncio.run(
            _minimal_loop(bootstrap, baseline_lake, RAW_TOPICS + CLEAN_TOPICS, records, per_file)
        )

        per_record = size / records
        ratio = sink_rate / baseline_rate
        objects_per_100k = len(files) * 100_000 / records
        print(
            f"0. aiokafka consume only (ceiling):   {consume_rate:>10,.0f} records/s "
            "(getmany, nothing done with the records)"
        )
        print(
            f"1. pinpipe s3-sink (s3://):           {sink_rate:>10,.0f} records/s, "
            f"{sink_rate * per_record / 1e6:.1f} MB/s of records in"
        )
        print(
            f"2. minimal consume→Arrow→Delta loop:  {baseline_rate:>10,.0f} records/s "
            f"(the sink: {ratio:.0%} of it; target >= 80%)"
        )
        print(
            f"   {len(files)} data files, {parquet_bytes / 1e6:.1f} MB of Parquet for "
            f"{records:,} records: {objects_per_100k:.0f} objects per 100,000 records "
            f"(the original's S3 sink, flush.size=1: 100,000); {log_objects} Delta log objects"
        )
        results: dict[str, Any] = {
            "records": records,
            "consume_only_records_per_s": round(consume_rate),
            "sink_records_per_s": round(sink_rate),
            "sink_mb_per_s": round(sink_rate * per_record / 1e6, 2),
            "baseline_records_per_s": round(baseline_rate),
            "ratio": round(ratio, 3),
            "objects": len(files),
            "delta_log_objects": log_objects,
            "objects_per_100k": round(objects_per_100k, 1),
            "parquet_bytes": parquet_bytes,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"written to {args.out} (logs in {state})")


async def _consume_only(bootstrap: str, topics: list[str], records: int) -> float:
    """The Python Kafka client's own ceiling: read every record once, do nothing with it."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        seen = 0
        batches = await consumer.getmany(timeout_ms=10_000, max_records=10_000)
        started = time.perf_counter()  # the first fetch (connections, metadata) is not counted
        first = seen = sum(map(len, batches.values()))
        while seen < records:
            batches = await consumer.getmany(timeout_ms=10_000, max_records=10_000)
            if not batches:
                raise RuntimeError(f"consume only: {seen} of {records}")
            seen += sum(map(len, batches.values()))
        return (seen - first) / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def _minimal_loop(
    bootstrap: str, lake: Lake, topics: list[str], records: int, per_file: int
) -> float:
    """The baseline: consume, decode to Arrow, append to Delta with the partition's next offset
    as the transaction, commit the Kafka offset; ``per_file`` records a file."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id="bench-minimal",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    buffers: dict[TopicPartition, list[Any]] = {}
    done = 0

    async def flush(tp: TopicPartition) -> None:
        nonlocal done
        messages = buffers.pop(tp)
        record_type = record_type_of(tp.topic)
        assert record_type is not None
        columns = Columns()
        for message in messages:
            columns.add(message.key, message.value, message.offset, message.timestamp)
        zone: Zone = "clean" if ".clean." in tp.topic else "raw"
        table, _ = to_lake_table(zone, record_type, tp.topic, tp.partition, columns)
        day = date(1970, 1, 1) + timedelta(days=messages[0].timestamp // 86_400_000)
        offsets = Offsets(f"minimal/{tp.topic}/{tp.partition}", messages[-1].offset + 1)
        await asyncio.to_thread(
            append, lake, table_path(zone, record_type), with_date(table, day), offsets=[offsets]
        )
        await consumer.commit({tp: offsets.next_offset})
        done += len(messages)

    try:
        batches = await consumer.getmany(timeout_ms=10_000, max_records=10_000)
        started = time.perf_counter()
        while True:
            for tp, messages in batches.items():
                buffers.setdefault(tp, []).extend(messages)
                if len(buffers[tp]) >= per_file:
                    await flush(tp)
            if done + sum(map(len, buffers.values())) >= records:
                for tp in list(buffers):
                    await flush(tp)
                return done / (time.perf_counter() - started)
            batches = await consumer.getmany(timeout_ms=10_000, max_records=10_000)
            if not batches:
                raise RuntimeError(f"minimal loop: {done} of {records}")
    finally:
        await consumer.stop()


def _make_bucket(fs: Any, name: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            fs.mkdir(name)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


if __name__ == "__main__":
    main()
