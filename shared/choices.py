"""Narrowing a string to one of a ``Literal``'s values, for input that arrives as text (a CLI
option, a query parameter): checked once, then typed as the Literal from there on."""

from __future__ import annotations

from typing import TypeVar

Choice = TypeVar("Choice", bound=str)


def one_of(value: str, allowed: tuple[Choice, ...], what: str) -> Choice:
    """``value`` as one of ``allowed``, or ValueError naming them all."""
    for choice in allowed:
        if value == choice:
            return choice
    names = ", ".join(allowed[:-1]) + " or " + allowed[-1] if len(allowed) > 1 else allowed[0]
    raise ValueError(f"unknown {what} {value!r}: {names}")
