"""bench: the benchmarks of ``make bench``; each prints its numbers and writes JSON to var/bench."""
