"""Pure state transitions of the all-time aggregates (default semantics: the latest record per
``ind`` counts; a changed value retracts its old contribution).

Counts are kept per source partition (``[partition, group]`` keys): Faust writes a table change
to the changelog partition of the event that made it, so a key must only ever be touched from
one partition for recovery to rebuild it exactly. Readers sum over partitions.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, MutableMapping


def group_key(partition: int, group: str | None) -> str:
    return json.dumps([partition, group])


def parse_group_key(key: str) -> tuple[int, str | None]:
    partition, group = json.loads(key)
    return int(partition), group


def apply_latest(
    latest: MutableMapping[str, str | None],
    counts: MutableMapping[str, int],
    partition: int,
    ind: int,
    group: str | None,
) -> None:
    """Record that ``ind`` now belongs to ``group``, retracting its previous group if any."""
    ind_key = str(ind)
    if ind_key in latest:
        previous = latest[ind_key]
        if previous == group:
            return
        old_key = group_key(partition, previous)
        counts[old_key] = counts[old_key] - 1
    latest[ind_key] = group
    new_key = group_key(partition, group)
    counts[new_key] = counts[new_key] + 1


def totals(items: Iterable[tuple[str, int]]) -> dict[str | None, int]:
    """Sum per-partition counts into one count per group, dropping zeros."""
    summed: Counter[str | None] = Counter()
    for key, count in items:
        summed[parse_group_key(key)[1]] += count
    return {group: count for group, count in summed.items() if count}
