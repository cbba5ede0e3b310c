from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.aggregator.counts import apply_latest, group_key, totals


def test_a_changed_value_retracts_its_old_contribution() -> None:
    latest: dict[str, str | None] = {}
    counts: dict[str, int] = {}

    def apply(ind: int, country: str | None) -> None:
        counts.setdefault(group_key(0, country), 0)
        counts.setdefault(group_key(0, latest.get(str(ind))), 0)
        apply_latest(latest, counts, 0, ind, country)

    apply(1, "France")
    apply(2, "France")
    apply(1, "Spain")
    apply(2, "France")  # a repeat changes nothing
    apply(3, None)
    assert totals(counts.items()) == {"France": 1, "Spain": 1, None: 1}


class _Default(dict[str, int]):
    def __missing__(self, key: str) -> int:
        return 0


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 20), st.sampled_from(["a", "b", "c", None]))
    )
)
def test_counts_equal_a_recount_of_the_latest_value_per_ind(
    events: list[tuple[int, int, str | None]],
) -> None:
    latest: dict[str, str | None] = {}
    counts = _Default()
    partition_of: dict[int, int] = {}
    expected_latest: dict[int, str | None] = {}
    for partition, ind, group in events:
        partition = partition_of.setdefault(ind, partition)  # one ind, one partition (keyed by ind)
        apply_latest(latest, counts, partition, ind, group)
        expected_latest[ind] = group
    expected: dict[str | None, int] = {}
    for group in expected_latest.values():
        expected[group] = expected.get(group, 0) + 1
    assert totals(counts.items()) == expected
    assert sum(totals(counts.items()).values()) == len(expected_latest)
