"""What the OpenAPI at ``/docs`` needs beyond FastAPI's defaults: the request bodies that the
routes read themselves (to enforce size limits and answer in their API's error format) and the
error responses, each under the media type it is really sent with."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from services.ingest_api.errors import PROXY_MEDIA_TYPE, STREAMS_MEDIA_TYPE
from shared.api_models import (
    CreateStreamRequest,
    ForbiddenBody,
    ProduceRequest,
    ProxyErrorBody,
    PutRecordRequest,
    PutRecordsRequest,
    StreamErrorBody,
)

REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    ProduceRequest,
    CreateStreamRequest,
    PutRecordRequest,
    PutRecordsRequest,
)


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def request_body(model: type[BaseModel], *media_types: str) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON request body of ``model``."""
    return {
        "requestBody": {
            "required": True,
            "content": {media_type: {"schema": ref(model)} for media_type in media_types},
        }
    }


def _forbidden() -> dict[str, Any]:
    return {"application/json": {"schema": ref(ForbiddenBody)}}


def proxy_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error responses of the topics API: ``{"error_code", "message"}``."""
    descriptions = {
        403: "40301: topic outside PINPIPE_INGEST_TOPIC_PATTERN or internal to pinpipe; "
        "or a missing/wrong x-api-key",
        404: "40401: unknown topic; 40402: unknown partition",
        413: "body over PINPIPE_INGEST_MAX_BODY_BYTES, over PINPIPE_INGEST_MAX_RECORDS records, "
        "or a record value over 1,000,000 bytes",
        415: "unsupported content type, or a schema format (no schema registry here)",
        422: "malformed body; 42201/42202: schema format without key/value schema",
        503: "50302: Kafka unavailable; 50303: requests or bytes in flight at their limit; "
        "retry after Retry-After seconds",
    }
    docs: dict[int | str, dict[str, Any]] = {}
    for status in (403, *statuses):
        content: dict[str, Any] = {PROXY_MEDIA_TYPE: {"schema": ref(ProxyErrorBody)}}
        if status == 403:
            content.update(_forbidden())
        docs[status] = {"description": descriptions[status], "content": content}
    return docs


def stream_errors() -> dict[int | str, dict[str, Any]]:
    """Error responses of the streams API: Kinesis' ``{"__type", "message"}``."""
    body = {STREAMS_MEDIA_TYPE: {"schema": ref(StreamErrorBody)}}
    return {
        400: {
            "description": "ResourceNotFoundException, ResourceInUseException, "
            "InvalidArgumentException, ValidationException, SerializationException, "
            "LimitExceededException",
            "content": body,
        },
        403: {
            "description": "missing or wrong x-api-key (CreateStream, DeleteStream: an admin key)",
            "content": _forbidden(),
        },
        413: {"description": "body over the size limit (ValidationException)", "content": body},
        503: {
            "description": "ServiceUnavailable: Kafka unavailable, or requests in flight at "
            "their limit; retry after Retry-After seconds",
            "content": body,
        },
    }


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the request models, and drop FastAPI's default 422
    (``validation_error_handler`` answers in each API's own format instead)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        models: tuple[type[BaseModel], ...] = (
            *REQUEST_MODELS,
            ForbiddenBody,
            ProxyErrorBody,
            StreamErrorBody,
        )
        for model in models:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        for methods in schema.get("paths", {}).values():
            for operation in methods.values():
                responses = operation.get("responses", {})
                if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                    del responses["422"]
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise
