"""Narrowing text to a Literal's values."""

from __future__ import annotations

import pytest

from shared.choices import one_of
from shared.lake import ZONES


def test_a_value_of_the_literal_comes_back() -> None:
    assert one_of("raw", ZONES, "zone") == "raw"


def test_anything_else_names_every_choice() -> None:
    with pytest.raises(ValueError, match=r"unknown zone 'Raw': raw or clean"):
        one_of("Raw", ZONES, "zone")
