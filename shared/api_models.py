"""Request and response bodies of the ingest API (REST Proxy v2 topics API and Kinesis-style
streams API): validation on the server and the OpenAPI docs. The emulator builds its bodies as
plain JSON of the same shape."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

# -- Topics API (Kafka REST Proxy v2) -----------------------------------------------------------


class ProduceRecord(BaseModel):
    key: Any = None
    value: Any = None
    partition: int | None = Field(default=None, ge=0)


class ProduceRequest(BaseModel):
    """``{"records": [{"key"?, "value", "partition"?}]}``; schema formats add schema fields."""

    records: list[ProduceRecord]
    key_schema: str | None = None
    key_schema_id: int | None = None
    value_schema: str | None = None
    value_schema_id: int | None = None


class ProduceOffset(BaseModel):
    partition: int | None
    offset: int | None
    error_code: int | None
    error: str | None


class ProduceResponse(BaseModel):
    offsets: list[ProduceOffset]
    key_schema_id: int | None = None
    value_schema_id: int | None = None


class ReplicaInfo(BaseModel):
    broker: int
    leader: bool
    in_sync: bool


class PartitionInfo(BaseModel):
    partition: int
    leader: int
    replicas: list[ReplicaInfo]


class TopicInfo(BaseModel):
    name: str
    configs: dict[str, str]
    partitions: list[PartitionInfo]


class ForbiddenBody(BaseModel):
    """API Gateway's answer to a missing or wrong API key."""

    message: str


class ProxyErrorBody(BaseModel):
    error_code: int
    message: str


# -- Streams API (Kinesis through API Gateway) ---------------------------------------------------


class StreamErrorBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    type: str = Field(alias="__type")
    message: str


class CreateStreamRequest(BaseModel):
    ShardCount: int | None = Field(default=None, ge=1)
    StreamModeDetails: dict[str, str] | None = None


class PutRecordRequest(BaseModel):
    """``Data`` is a JSON object (stored as its JSON text, as the original API Gateway mapping
    did) or a base64 string (stored decoded, as Kinesis does)."""

    StreamName: str | None = None
    Data: dict[str, Any] | list[Any] | str
    PartitionKey: str = Field(min_length=1, max_length=256)
    ExplicitHashKey: str | None = None
    SequenceNumberForOrdering: str | None = None


class PutRecordResponse(BaseModel):
    SequenceNumber: str
    ShardId: str
    EncryptionType: str = "NONE"


class PutRecordsEntry(BaseModel):
    """One record of PutRecords: Kinesis' ``Data``/``PartitionKey`` or the API Gateway
    template's ``data``/``partition-key``."""

    model_config = ConfigDict(populate_by_name=True)
    Data: dict[str, Any] | list[Any] | str | None = Field(
        default=None, validation_alias=AliasChoices("Data", "data")
    )
    PartitionKey: str | None = Field(
        default=None, validation_alias=AliasChoices("PartitionKey", "partition-key")
    )
    ExplicitHashKey: str | None = None


class PutRecordsRequest(BaseModel):
    """Either spelling: ``Records`` (Kinesis) or ``records`` (the API Gateway template)."""

    Records: list[PutRecordsEntry] | None = Field(default=None, min_length=1, max_length=500)
    records: list[PutRecordsEntry] | None = Field(default=None, min_length=1, max_length=500)


class PutRecordsResultEntry(BaseModel):
    SequenceNumber: str | None = None
    ShardId: str | None = None
    ErrorCode: str | None = None
    ErrorMessage: str | None = None


class PutRecordsResponse(BaseModel):
    FailedRecordCount: int
    Records: list[PutRecordsResultEntry]
    EncryptionType: str = "NONE"


class StreamSummary(BaseModel):
    StreamName: str
    StreamARN: str
    StreamStatus: str
    StreamModeDetails: dict[str, str]
    StreamCreationTimestamp: float | None


class ListStreamsResponse(BaseModel):
    StreamNames: list[str]
    HasMoreStreams: bool
    StreamSummaries: list[StreamSummary]


class HashKeyRangeBody(BaseModel):
    StartingHashKey: str
    EndingHashKey: str


class SequenceNumberRangeBody(BaseModel):
    StartingSequenceNumber: str
    EndingSequenceNumber: str | None = None


class ShardBody(BaseModel):
    ShardId: str
    HashKeyRange: HashKeyRangeBody
    SequenceNumberRange: SequenceNumberRangeBody


class StreamDescription(BaseModel):
    StreamName: str
    StreamARN: str
    StreamStatus: str
    StreamModeDetails: dict[str, str]
    Shards: list[ShardBody]
    HasMoreShards: bool
    RetentionPeriodHours: int
    StreamCreationTimestamp: float | None
    EnhancedMonitoring: list[dict[str, list[str]]]
    EncryptionType: str


class DescribeStreamResponse(BaseModel):
    StreamDescription: StreamDescription
