"""Board facts for real boards, with memory, cores and clock injected: what the rule gives a
Raspberry Pi 3, 4 and 5, and a board too small for one worker refusing to start."""

from __future__ import annotations

import pytest

from squall.cli import main
from squall.supervisor import facts as F
from squall.supervisor.facts import board_facts, derive_slots

PIS = [
    # board, memory MB, cores, clock Hz, slots, capacity GHz
    pytest.param(921, 4, 1.2e9, 1, 3.84, id="Pi 3: 1 GB (921 MB usable) holds one worker"),
    pytest.param(1024, 4, 1.2e9, 1, 3.84, id="Pi 3: nominal 1 GB, still one worker"),
    pytest.param(3796, 4, 1.5e9, 4, 4.80, id="Pi 4 4 GB: memory allows 6, the 4 cores cap it"),
    pytest.param(8062, 4, 2.4e9, 4, 7.68, id="Pi 5 8 GB: memory allows 15, the 4 cores cap it"),
]


@pytest.mark.parametrize("memory_mb, cores, clock_hz, slots, capacity_ghz", PIS)
def test_raspberry_pis(memory_mb, cores, clock_hz, slots, capacity_ghz):
    facts = board_facts("pi", memory_mb=memory_mb, cores=cores, clock_hz=clock_hz)
    assert facts.slots == slots
    assert facts.capacity_hz / 1e9 == pytest.approx(capacity_ghz)
    assert facts.refusal() is None
    text = facts.describe()
    assert f"memory {memory_mb} MB - {F.RESERVE_MB} MB reserve" in text  # the rule, with its numbers
    assert "override: --slots N" in text and "override: --capacity-hz X" in text


def test_a_board_too_small_for_one_worker_gets_zero_slots_and_a_refusal():
    facts = board_facts("zero2w", memory_mb=512, cores=4, clock_hz=1.0e9)  # a Pi Zero 2 W
    assert facts.slots == 0
    reason = facts.refusal()
    assert reason is not None
    assert "512 MB" in reason and "--slots 1" in reason


def test_slots_override_wins_over_the_rule():
    facts = board_facts("zero2w", slots=1, memory_mb=512, cores=4, clock_hz=1.0e9)
    assert facts.slots == 1 and facts.slots_rule == "set by --slots" and facts.refusal() is None


@pytest.mark.parametrize(
    "memory_mb, cores, ports, expected",
    [
        pytest.param(F.RESERVE_MB + F.WORKER_BUDGET_MB - 1, 8, None, 0, id="one MB short of a worker: zero"),
        pytest.param(F.RESERVE_MB + F.WORKER_BUDGET_MB, 8, None, 1, id="exactly one worker"),
        pytest.param(100, 8, None, 0, id="less than the reserve: zero, never negative"),
        pytest.param(64_000, 8, 3, 3, id="ports cap the slots"),
    ],
)
def test_derive_slots_edges(memory_mb, cores, ports, expected):
    assert derive_slots(memory_mb, cores, ports)[0] == expected


def test_cli_refuses_to_start_a_board_without_slots(monkeypatch, capsys):
    monkeypatch.setattr(F, "measured_memory_mb", lambda: 600)
    assert main(["supervisor", "--dry-run", "--nimbus", "127.0.0.1:1"]) == 2
    out, err = capsys.readouterr()
    assert "slots        0" in out  # dry-run still shows what the board advertises
    assert "no worker slot" in err and "--slots 1" in err
    assert main(["supervisor", "--nimbus", "127.0.0.1:1"]) == 2  # refuses before contacting Nimbus
    assert main(["supervisor", "--dry-run", "--slots", "1", "--nimbus", "127.0.0.1:1"]) == 0


def test_dry_run_shows_rule_and_overrides(capsys, monkeypatch):
    monkeypatch.delenv("SQUALL_NIMBUS", raising=False)
    assert main(["supervisor", "--dry-run", "--cluster", "lab"]) == 0
    out = capsys.readouterr().out
    for needle in ("rule: min(cores", "override: --slots N", "override: --ports A-B", "cluster      lab",
                   "discovered on the local network"):
        assert needle in out
