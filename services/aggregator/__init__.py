"""services/aggregator: a Faust app whose tables always hold the answers to the analysis
questions, served as JSON on ``/aggregates``."""
