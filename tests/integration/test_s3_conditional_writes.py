"""The S3 server of the tests honours conditional writes (``If-None-Match: *``): of eight
concurrent PUTs of one new key, exactly one succeeds and the others get 412. Delta commits on
S3 rely on this (delta-rs 1.x writes each log entry so); a server that ignored the header
would let two sinks both commit one table version."""

from __future__ import annotations

import asyncio

import pytest
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from tests.servers import S3Server

pytestmark = pytest.mark.integration


async def test_one_of_eight_concurrent_conditional_puts_wins(
    s3_server: S3Server, s3_bucket: str
) -> None:
    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=s3_server.endpoint,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name="us-east-1",
    ) as s3:

        async def put(n: int) -> str:
            try:
                await s3.put_object(
                    Bucket=s3_bucket, Key="_delta_log/00000.json", Body=b"%d" % n, IfNoneMatch="*"
                )
            except ClientError as exc:
                return str(exc.response["Error"]["Code"])
            return "ok"

        outcomes = await asyncio.gather(*(put(n) for n in range(8)))
        assert sorted(outcomes) == ["PreconditionFailed"] * 7 + ["ok"]
        body = await (await s3.get_object(Bucket=s3_bucket, Key="_delta_log/00000.json"))[
            "Body"
        ].read()
        assert body == b"%d" % outcomes.index("ok"), "the winner's object stays"
