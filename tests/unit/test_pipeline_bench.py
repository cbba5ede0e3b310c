"""The pipeline benchmark's judgement: when a step holds, and which stage saturated."""

from __future__ import annotations

import math

from bench.aggregator_bench import FRESHNESS
from bench.metrics_text import histogram
from bench.pipeline_bench import Step, saturated_stage


def _step(**values: object) -> Step:
    step = Step(500.0, achieved=500.0, freshness_p99_s=0.2, lake_delay_p99_s=61.0)
    for name, value in values.items():
        setattr(step, name, value)
    return step


def test_a_step_holds_only_with_the_rate_the_freshness_and_the_lake_delay() -> None:
    assert _step().held
    assert not _step(achieved=450.0).held
    assert not _step(freshness_p99_s=1.5).held
    assert not _step(lake_delay_p99_s=70.0).held
    assert not _step(freshness_p99_s=math.nan).held, "not measured is not held"


def test_the_consumer_furthest_past_its_allowance_saturated_else_the_busiest_process() -> None:
    behind = _step(behind_s={"cleaner": 0.1, "aggregator": 3.0, "s3-sink": 60.0})
    assert saturated_stage(behind, 60).startswith("aggregator (3.0 s behind)")
    idle = _step(behind_s={"cleaner": 0.0, "aggregator": 0.5, "s3-sink": 64.0})
    idle.cpu_s = {"kafka": 30.0, "cleaner": 12.0}
    verdict = saturated_stage(idle, 60)
    assert verdict.startswith("no consumer behind") and "busiest kafka (50% of a core)" in verdict


def test_histogram_buckets_are_summed_over_labels() -> None:
    text = "\n".join(
        [
            f'{FRESHNESS}_bucket{{type="pin",le="0.1"}} 2.0',
            f'{FRESHNESS}_bucket{{type="geo",le="0.1"}} 3.0',
            f'{FRESHNESS}_bucket{{type="pin",le="+Inf"}} 4.0',
            f"{FRESHNESS}_count 4.0",
        ]
    )
    assert histogram(text, FRESHNESS) == {0.1: 5.0, math.inf: 4.0}
