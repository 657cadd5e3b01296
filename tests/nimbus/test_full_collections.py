"""The loop's own full garbage collections (CPython stops starting them while installed, the
loop runs one every ``every_s``, closing puts its thresholds back), and its short GIL switch
interval, process-wide like them. No sockets."""

from __future__ import annotations

import gc

from squall.nimbus.full_collections import NEVER, FullCollections


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def full_collections_so_far() -> int:
    return int(gc.get_stats()[2]["collections"])


def test_installed_cpython_starts_no_full_collection_and_the_loop_runs_one_when_due():
    before = gc.get_threshold()
    clock = Clock()
    fc = FullCollections(every_s=60.0, clock=clock)
    fc.install()
    try:
        assert gc.get_threshold() == (before[0], before[1], NEVER)
        seen = full_collections_so_far()
        clock.now = 59.0
        assert not fc.run_if_due() and full_collections_so_far() == seen
        clock.now = 60.0
        assert fc.run_if_due() and full_collections_so_far() == seen + 1
        assert not fc.run_if_due()  # the next one is 60 s later
    finally:
        fc.close()
    assert gc.get_threshold() == before


def test_two_servers_in_one_process_share_the_setting_until_the_last_closes():
    before = gc.get_threshold()
    a, b = FullCollections(), FullCollections()
    a.install()
    b.install()
    a.close()
    assert gc.get_threshold()[2] == NEVER  # b still runs
    b.close()
    assert gc.get_threshold() == before


def test_zero_leaves_cpython_s_rule_in_place():
    before = gc.get_threshold()
    fc = FullCollections(every_s=0.0, clock=Clock())
    fc.install()
    assert gc.get_threshold() == before and not fc.run_if_due()
    fc.close()
    assert gc.get_threshold() == before


def test_the_loop_s_switch_interval_is_set_while_installed_and_put_back_after():
    import sys

    from squall.nimbus.gil import SWITCH_S, ShortSwitches

    before = sys.getswitchinterval()
    a, b = ShortSwitches(), ShortSwitches()
    a.install()
    b.install()
    assert sys.getswitchinterval() == SWITCH_S
    a.close()
    assert sys.getswitchinterval() == SWITCH_S  # b still runs
    b.close()
    assert sys.getswitchinterval() == before
