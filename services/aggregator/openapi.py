"""The OpenAPI document of the aggregator's public routes (served at ``GET /openapi.json``), and
the size limits of the values those routes take, which the document states and api.py enforces.

It describes the public port only: ``/internal/aggregates`` is on the internal port, for the
other replicas, and is no part of the API.
"""

from __future__ import annotations

from typing import Any

MAX_WINDOW_CHARS = 16  # ?window= (all, <N>m, <N>s)
MAX_NAME_CHARS = 100  # a path value: a question, a country, an age group
MAX_QUERY_CHARS = 256  # the whole query string
WINDOW_PATTERN = "^(all|[0-9]+[ms])?$"  # empty: all

_ERROR = {
    "type": "object",
    "required": ["error_code", "message"],
    "properties": {"error_code": {"type": "integer"}, "message": {"type": "string"}},
}
_OFFSETS = {
    "type": "object",
    "description": "the offset each partition of each clean topic is aggregated up to",
    "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}},
}
_STAMP = {"as_of": {"type": "string", "format": "date-time"}, "offsets": _OFFSETS}
_CATEGORIES = {
    "categories": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["category", "category_count"],
            "properties": {
                "category": {"type": ["string", "null"]},
                "category_count": {"type": "integer"},
            },
        },
    },
    "most_popular_categories": {"type": "array", "items": {"type": ["string", "null"]}},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    descriptions = {
        400: "a value longer than the API takes, or given twice",
        404: "no such question (or route)",
        422: "a window that is not all, <N>m or <N>s, out of range, or not taken",
        503: "recovering or rebalancing: some partitions are not served yet",
    }
    error = {"$ref": "#/components/schemas/Error"}
    return {str(s): _json(error, descriptions[s]) for s in statuses}


def _window(retention_seconds: int) -> dict[str, Any]:
    return {
        "name": "window",
        "in": "query",
        "required": False,
        "description": (
            f"all (the default), or the last <N> minutes or seconds, at most {retention_seconds}s"
        ),
        "schema": {"type": "string", "maxLength": MAX_WINDOW_CHARS, "pattern": WINDOW_PATTERN},
    }


def _name(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
    }


def _get(summary: str, parameters: list[dict[str, Any]], **responses: Any) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": parameters, "responses": responses}}


def openapi(questions: list[str], windowed: list[str], retention_seconds: int) -> dict[str, Any]:
    """The document, for these question names (the windowed ones take ``?window=``)."""
    health = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    }
    question = {
        "type": "object",
        "required": ["question", "window", "columns", "rows", "as_of", "offsets"],
        "properties": {
            "question": {"type": "string", "enum": questions},
            "window": {"type": "string"},
            "columns": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": {"type": "object"}},
            **_STAMP,
        },
    }
    country = {
        "type": "object",
        "required": ["country", "window", "posts", "categories", "most_followed_user", "as_of"],
        "properties": {
            "country": {"type": "string"},
            "window": {"type": "string"},
            "posts": {"type": "integer"},
            **_CATEGORIES,
            "most_followed_user": {
                "type": ["object", "null"],
                "properties": {
                    "poster_name": {"type": ["string", "null"]},
                    "follower_count": {"type": ["integer", "null"]},
                },
            },
            **_STAMP,
        },
    }
    age_group = {
        "type": "object",
        "required": ["age_group", "window", "categories", "median_follower_count", "as_of"],
        "properties": {
            "age_group": {"type": "string"},
            "window": {"type": "string"},
            **_CATEGORIES,
            "median_follower_count": {"type": ["integer", "null"]},
            "median_follower_count_by_join_year": {"type": "array", "items": {"type": "object"}},
            **_STAMP,
        },
    }
    index = {
        "type": "object",
        "required": ["questions"],
        "properties": {
            "questions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "description", "windowed"],
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "windowed": {"type": "boolean"},
                    },
                },
            }
        },
    }
    question_name = {
        **_name("question", f"a question's name; these take a window: {', '.join(windowed)}"),
        "schema": {"type": "string", "enum": questions},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pinpipe aggregator",
            "version": "1",
            "description": (
                "Live answers to the analysis questions, from any replica. Errors are "
                '{"error_code", "message"}.'
            ),
        },
        "paths": {
            "/aggregates": _get(
                "The questions", [], **{"200": _json(index, "the questions"), **_errors(400)}
            ),
            "/aggregates/{question}": _get(
                "A question's live answer, with the columns of its batch query",
                [question_name, _window(retention_seconds)],
                **{"200": _json(question, "the answer"), **_errors(400, 404, 422, 503)},
            ),
            "/aggregates/countries/{country}": _get(
                "One country's posts, categories and most followed user",
                [_name("country", "a country's name"), _window(retention_seconds)],
                **{"200": _json(country, "the country"), **_errors(400, 404, 422, 503)},
            ),
            "/aggregates/age-groups/{group}": _get(
                "One age group's categories and median follower counts",
                [
                    _name("group", "an age group (18-24, 25-35, 36-50, 50+)"),
                    _window(retention_seconds),
                ],
                **{"200": _json(age_group, "the age group"), **_errors(400, 404, 422, 503)},
            ),
            "/healthz": _get(
                "Alive (503 once the aggregating agent crashed)",
                [],
                **{"200": _json(health, "alive"), **_errors(400, 503)},
            ),
            "/readyz": _get(
                "Ready: tables recovered, aggregates rebuilt, not rebalancing, Kafka answers",
                [],
                **{"200": _json(health, "ready"), **_errors(400, 503)},
            ),
            "/metrics": _get(
                "Prometheus metrics",
                [],
                **{
                    "200": {
                        "description": "the metrics, in Prometheus' text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(400),
                },
            ),
            "/openapi.json": _get(
                "This document",
                [],
                **{"200": _json({"type": "object"}, "the document"), **_errors(400)},
            ),
        },
        "components": {"schemas": {"Error": _ERROR}},
    }
