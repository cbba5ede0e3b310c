"""The cleaner against a real broker, as a real process: raw in, clean out, poison to the DLQ
while good records keep flowing, exactly once across kill -9 and across replicas sharing the
partitions. Clean topics are shared by the whole test run, so each test reads back only the
``ind``s it made (a range of its own) and the DLQ entries of its own raw topics."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from shared.cleaning import clean
from shared.kafka_admin import ensure_topics
from shared.kafka_security import KafkaConnection
from shared.models import DlqEntry
from shared.topics import DLQ_TOPIC, RECORD_TYPES, RecordType, clean_topic, clean_topics
from tests.conftest import SHARED_DATA, async_wait_until, wait_until
from tests.integration.conftest import (
    IngestServer,
    group_committed,
    kill_broker,
    produce,
    read_committed,
)
from tests.processes import ServiceProcess
from tests.servers import KafkaServer

SAMPLE_FILES = {"pin": "pinterest_data", "geo": "geolocation_data", "user": "user_data"}
PARTITIONS = 3


def _sample(record_type: RecordType) -> list[dict[str, Any]]:
    path = SHARED_DATA / "raw_union" / f"{SAMPLE_FILES[record_type]}.jsonl"
    return [orjson.loads(line) for line in path.read_text().splitlines() if line.strip()]


def Cleaner(env: dict[str, str], log: Path) -> ServiceProcess:
    """``pinpipe cleaner`` in a process of its own."""
    return ServiceProcess("cleaner", env, log, "PINPIPE_CLEANER_PORT")


@pytest.fixture
def cleaners(kafka_bootstrap: str, unique: str, tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    """Cleaner processes (append with ``cleaners.append(Cleaner(env, log).start())``), all of
    one consumer group, cleaning the raw topics ``c<unique>.*``; killed at the end."""
    started: list[ServiceProcess] = []
    yield started
    for cleaner in started:
        if cleaner.alive:
            cleaner.kill()


def _readyz(cleaner: ServiceProcess) -> int:
    return httpx.get(cleaner.url + "/readyz", timeout=5).status_code


def _env(kafka_bootstrap: str, unique: str, **extra: str) -> dict[str, str]:
    prefix = f"c{unique}"
    return {
        **os.environ,
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PINPIPE_TOPIC_PREFIX": prefix,
        "PINPIPE_TOPIC_PARTITIONS": str(PARTITIONS),
        "PINPIPE_CLEANER_APP_ID": f"cleaner-{unique}",
        "PINPIPE_CLEANER_RAW_TOPIC_PATTERN": rf"^{prefix}\.\w+$|^streaming-{prefix}-[\w-]+$",
        "PINPIPE_CLEANER_BATCH_SIZE": "500",
        "PINPIPE_LOG_LEVEL": "INFO",
        **extra,
    }


def _good_records(base: int, count: int) -> list[tuple[RecordType, bytes]]:
    """``count`` real sample rows, cycling pin/geo/user, with ``ind``s base … base+count-1."""
    samples = {t: _sample(t) for t in RECORD_TYPES}
    records: list[tuple[RecordType, bytes]] = []
    for i in range(count):
        record_type = RECORD_TYPES[i % 3]
        row = dict(samples[record_type][(i * 7) % len(samples[record_type])])
        row["index" if record_type == "pin" else "ind"] = base + i
        records.append((record_type, orjson.dumps(row)))
    return records


def _clean_inds(records: list[Any], base: int, count: int) -> Counter[tuple[str, int]]:
    """How often each (clean topic, ind) of this test's range appears."""
    seen: Counter[tuple[str, int]] = Counter()
    for record in records:
        if record.topic in clean_topics():
            ind = orjson.loads(record.value)["ind"]
            if base <= ind < base + count:
                seen[(record.topic, ind)] += 1
    return seen


def _expected(records: list[tuple[RecordType, bytes]], base: int) -> set[tuple[str, int]]:
    return {(clean_topic(t), base + i) for i, (t, _) in enumerate(records)}


def _raw_ind(value: bytes) -> Any:
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return record.get("ind", record.get("index")) if isinstance(record, dict) else None


def test_raw_in_clean_out_poison_to_the_dlq_while_good_records_flow(
    kafka_bootstrap: str, unique: str, tmp_path: Path, cleaners: list[ServiceProcess]
) -> None:
    prefix = f"c{unique}"
    env = _env(kafka_bootstrap, unique, PINPIPE_CLEANER_MAX_RECORD_BYTES="4096")
    board = f"{prefix}.board"  # matches the pattern, but no pin/geo/user suffix
    asyncio.run(ensure_topics(KafkaConnection(kafka_bootstrap), [board], PARTITIONS))
    cleaner = Cleaner(env, tmp_path / "cleaner.log").start()
    cleaners.append(cleaner)

    base = random.randrange(10**9, 2 * 10**9)
    good = _good_records(base, 600)
    poison: list[tuple[str, bytes, str]] = [
        (f"{prefix}.pin", b"{not json", "not_json"),
        (f"{prefix}.geo", b'["an", "array"]', "not_an_object"),
        (f"{prefix}.user", orjson.dumps({"first_name": "no ind"}), "missing_ind"),
        (f"{prefix}.user", orjson.dumps({"ind": 1, "age": "old"}), "wrong_type"),
        (f"{prefix}.pin", orjson.dumps({"index": 2, "title": "x" * 5000}), "oversize"),
        (board, orjson.dumps({"ind": 3}), "unknown_type"),
    ]
    messages: list[tuple[str, bytes]] = [(f"{prefix}.{t}", v) for t, v in good]
    for n, (topic, value, _) in enumerate(poison):  # spread among the good ones
        messages.insert(n * 100 + 50, (topic, value))
    # A stream created after the cleaner started is found by the pattern subscription.
    late = f"streaming-{prefix}-late-pin"
    asyncio.run(ensure_topics(KafkaConnection(kafka_bootstrap), [late], 1))
    late_records = _good_records(base + len(good), 30)[::3]  # pins only
    messages += [(late, value) for _, value in late_records]
    asyncio.run(produce(kafka_bootstrap, messages))

    async def all_in() -> list[Any]:
        records = await read_committed(kafka_bootstrap, [*clean_topics(), DLQ_TOPIC])
        seen = _clean_inds(records, base, len(good) + 30)
        return records if len(seen) == len(good) + len(late_records) else []

    records = asyncio.run(
        async_wait_until(all_in, seconds=90, what="every good record cleaned", interval=1)
    )
    seen = _clean_inds(records, base, len(good) + 30)
    expected = _expected(good, base) | {
        (clean_topic("pin"), base + len(good) + 3 * i) for i in range(len(late_records))
    }
    assert set(seen) == expected
    assert set(seen.values()) == {1}, "a clean record was written twice"

    # Each clean record is exactly what the cleaning function makes of its raw record, and
    # keeps the raw record's timestamp (its ingest time).
    raw_topics = [f"{prefix}.{t}" for t in ("pin", "geo", "user")]
    ingested = {
        (r.topic.rsplit(".", 1)[1], _raw_ind(r.value)): r.timestamp
        for r in asyncio.run(read_committed(kafka_bootstrap, raw_topics))
    }
    by_key = {(r.topic, orjson.loads(r.value)["ind"]): r for r in records if r.topic != DLQ_TOPIC}
    for i, (record_type, value) in enumerate(good):
        record = by_key[(clean_topic(record_type), base + i)]
        assert orjson.loads(record.value) == orjson.loads(
            orjson.dumps(clean(record_type, orjson.loads(value)))
        )
        assert record.key == str(base + i).encode()
        assert record.timestamp == ingested[(record_type, base + i)]

    entries = [
        DlqEntry.model_validate_json(r.value)
        for r in records
        if r.topic == DLQ_TOPIC and orjson.loads(r.value)["source_topic"].startswith(prefix)
    ]
    assert sorted((e.source_topic, e.reason) for e in entries) == sorted(
        (topic, reason) for topic, _, reason in poison
    )
    originals = {base64.b64decode(e.original_base64) for e in entries}
    assert originals == {value for _, value, _ in poison}
    for reason in {reason for _, _, reason in poison}:
        assert cleaner.metric("pinpipe_cleaner_dlq_total", reason=reason) == 1
    assert cleaner.metric("pinpipe_cleaner_records_out_total", type="geo") == len(good) // 3
    assert cleaner.metric("pinpipe_cleaner_consumer_lag", topic=f"{prefix}.geo", partition="0") == 0


def test_kill_9_mid_stream_then_restart_loses_nothing_and_doubles_nothing(
    kafka_bootstrap: str, unique: str, tmp_path: Path, cleaners: list[ServiceProcess]
) -> None:
    prefix = f"c{unique}"
    env = _env(kafka_bootstrap, unique, PINPIPE_CLEANER_BATCH_SIZE="200")
    raw = [f"{prefix}.{t}" for t in RECORD_TYPES]
    base = random.randrange(2 * 10**9, 3 * 10**9)
    good = _good_records(base, 30_000)
    asyncio.run(ensure_topics(KafkaConnection(kafka_bootstrap), raw, PARTITIONS))
    asyncio.run(produce(kafka_bootstrap, [(f"{prefix}.{t}", v) for t, v in good]))

    first = Cleaner(env, tmp_path / "first.log").start()
    cleaners.append(first)
    group = env["PINPIPE_CLEANER_APP_ID"]
    done = wait_until(
        lambda: (n := asyncio.run(group_committed(kafka_bootstrap, group, raw))) > 3_000 and n,
        timeout=60,
        what="some records committed",
        interval=0.05,
    )
    first.kill()  # kill -9, mid-stream: transactions in flight are left open
    assert done < len(good), "all committed before the kill; the test needs more records"

    second = Cleaner(env, tmp_path / "second.log").start()
    cleaners.append(second)
    wait_until(
        lambda: asyncio.run(group_committed(kafka_bootstrap, group, raw)) == len(good),
        timeout=120,
        what="every record committed after the restart",
    )
    seen = _clean_inds(
        asyncio.run(read_committed(kafka_bootstrap, clean_topics())), base, len(good)
    )
    assert set(seen) == _expected(good, base), "records lost"
    duplicates = {key: n for key, n in seen.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} records written twice, e.g. {list(duplicates)[:3]}"


def test_replicas_share_the_partitions_and_hand_over_exactly_once(
    kafka_bootstrap: str, unique: str, tmp_path: Path, cleaners: list[ServiceProcess]
) -> None:
    prefix = f"c{unique}"
    env = _env(kafka_bootstrap, unique, PINPIPE_CLEANER_BATCH_SIZE="100")
    raw = [f"{prefix}.{t}" for t in RECORD_TYPES]
    base = random.randrange(3 * 10**9, 4 * 10**9)
    good = _good_records(base, 30_000)
    asyncio.run(ensure_topics(KafkaConnection(kafka_bootstrap), raw, PARTITIONS))

    one = Cleaner(env, tmp_path / "one.log").start()
    two = Cleaner(env, tmp_path / "two.log").start()
    cleaners += [one, two]
    asyncio.run(produce(kafka_bootstrap, [(f"{prefix}.{t}", v) for t, v in good]))
    group = env["PINPIPE_CLEANER_APP_ID"]
    wait_until(
        lambda: asyncio.run(group_committed(kafka_bootstrap, group, raw)) > 5_000,
        timeout=60,
        what="some records committed",
        interval=0.05,
    )
    shares = [
        sum(c.metric("pinpipe_cleaner_records_in_total", type=t) for t in RECORD_TYPES)
        for c in (one, two)
    ]
    assert all(share > 0 for share in shares), f"a replica cleaned nothing: {shares}"
    three = Cleaner(env, tmp_path / "three.log").start()  # a rebalance mid-stream
    cleaners.append(three)
    one.kill(signal.SIGTERM)  # and a graceful leave
    wait_until(
        lambda: asyncio.run(group_committed(kafka_bootstrap, group, raw)) == len(good),
        timeout=120,
        what="every record committed",
    )
    seen = _clean_inds(
        asyncio.run(read_committed(kafka_bootstrap, clean_topics())), base, len(good)
    )
    assert set(seen) == _expected(good, base), "records lost"
    assert set(seen.values()) == {1}, "records written twice"


def test_broker_killed_mid_stream_loses_nothing_and_doubles_nothing(
    own_broker: KafkaServer, unique: str, tmp_path: Path, cleaners: list[ServiceProcess]
) -> None:
    bootstrap = own_broker.bootstrap
    prefix = f"c{unique}"
    env = _env(bootstrap, unique, PINPIPE_CLEANER_BATCH_SIZE="200")
    raw = [f"{prefix}.{t}" for t in RECORD_TYPES]
    base = random.randrange(4 * 10**9, 5 * 10**9)
    good = _good_records(base, 30_000)
    asyncio.run(ensure_topics(KafkaConnection(bootstrap), raw, PARTITIONS))
    asyncio.run(produce(bootstrap, [(f"{prefix}.{t}", v) for t, v in good]))

    cleaner = Cleaner(env, tmp_path / "cleaner.log").start()
    cleaners.append(cleaner)
    group = env["PINPIPE_CLEANER_APP_ID"]
    done = wait_until(
        lambda: (n := asyncio.run(group_committed(bootstrap, group, raw))) > 3_000 and n,
        timeout=60,
        what="some records committed",
        interval=0.05,
    )
    kill_broker(own_broker)  # transactions in flight fail; the cleaner must wait and go on
    assert done < len(good), "all committed before the outage; the test needs more records"
    # The outage is seen: the cleaner's readiness turns 503 (its broker watch gets no answer).
    wait_until(lambda: _readyz(cleaner) == 503, timeout=30, what="the cleaner to notice the outage")
    assert cleaner.alive, "the cleaner died during the outage"
    own_broker.start()
    wait_until(
        lambda: asyncio.run(group_committed(bootstrap, group, raw)) == len(good),
        timeout=180,
        what="every record committed after the outage",
    )
    assert cleaner.alive, "the cleaner died"
    wait_until(lambda: _readyz(cleaner) == 200, timeout=60, what="the cleaner ready again")
    seen = _clean_inds(asyncio.run(read_committed(bootstrap, clean_topics())), base, len(good))
    assert set(seen) == _expected(good, base), "records lost"
    assert set(seen.values()) == {1}, "records written twice"


def test_a_huge_poison_record_from_the_api_does_not_stall_its_partition(
    kafka_bootstrap: str,
    unique: str,
    tmp_path: Path,
    cleaners: list[ServiceProcess],
    ingest_factory: Callable[..., IngestServer],
) -> None:
    """A ~0.9 MiB pin without an index, accepted by the API, then a good pin on the same
    partition: the poison's DLQ entry is cut to a bounded size (the whole original, base64 in
    JSON, would be over the broker's record limit and fail its transaction for ever), and the
    good pin is cleaned within seconds."""
    prefix = f"c{unique}"
    cleaners.append(Cleaner(_env(kafka_bootstrap, unique), tmp_path / "cleaner.log").start())
    api = ingest_factory(
        topic_prefix=prefix, topic_partitions=PARTITIONS, ingest_max_body_bytes=2 * 1024 * 1024
    )
    poison = {"title": "x" * 900_000, "category": "art"}
    ind = random.randrange(10**9, 2 * 10**9)
    with httpx.Client(base_url=api.url, timeout=30) as client:
        for value in (poison, {"index": ind, "title": "fine"}):
            response = client.post(
                f"/topics/{prefix}.pin",
                json={"records": [{"value": value, "partition": 0}]},
                headers={"Content-Type": "application/vnd.kafka.json.v2+json"},
            )
            assert response.status_code == 200, response.text
            assert response.json()["offsets"][0]["error_code"] is None

    async def good_cleaned() -> list[Any]:
        records = await read_committed(kafka_bootstrap, [clean_topic("pin"), DLQ_TOPIC])
        cleaned = [r for r in records if r.topic != DLQ_TOPIC and r.key == str(ind).encode()]
        return records if cleaned else []

    records = asyncio.run(
        async_wait_until(good_cleaned, seconds=30, what="the good pin cleaned", interval=0.5)
    )
    entries = [
        DlqEntry.model_validate_json(r.value)
        for r in records
        if r.topic == DLQ_TOPIC and orjson.loads(r.value)["source_topic"] == f"{prefix}.pin"
    ]
    original = orjson.dumps(poison)
    assert [(e.reason, e.original_bytes, e.original_truncated) for e in entries] == [
        ("missing_ind", len(original), True)
    ]
    assert entries[0].original_sha256 == hashlib.sha256(original).hexdigest()
