"""The window's latency buckets: each bucket's increase over consecutive samples, a drop read
as a worker restarted from zero, a bucket a sample lacks read as 0 (``metrics._add_increases``
against the definition written out per bucket)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from squall.nimbus.metrics import _add_increases, _increase

counts = st.lists(st.lists(st.integers(0, 50), max_size=6), min_size=1, max_size=8)


def per_bucket(width: int, samples: list[list[int]]) -> list[int]:
    return [int(_increase([float(s[k] if k < len(s) else 0) for s in samples])) for k in range(width)]


@given(counts, st.integers(1, 6))
def test_each_bucket_adds_its_increase_as_the_per_bucket_definition(samples, width):
    into = [7] * width  # what earlier series added stays
    _add_increases(into, samples)
    assert into == [7 + x for x in per_bucket(width, samples)]


def test_a_drop_counts_as_a_restart_from_zero_and_a_missing_bucket_as_zero():
    into = [0, 0, 0]
    _add_increases(into, [[5, 1, 2], [9, 3], [2, 4, 1]])
    # bucket 0: +4, then a drop to 2 (restart): +2; bucket 1: +2, +1; bucket 2: 2 -> 0 is a drop
    # to 0 (+0), then +1.
    assert into == [6, 3, 1]
