"""Board facts for real boards, with memory, cores and clock injected: the Findex (index,
label, slots) the frugal-Hadoop paper gives its boards and what it gives a Raspberry Pi 3, 4
and 5, and a board too small for one worker refusing to start."""

from __future__ import annotations

import pytest

from squall.cli import main
from squall.supervisor import facts as F
from squall.supervisor.facts import board_facts, derive_slots, findex_of

PIS = [
    # board, memory MB, cores, clock Hz, Findex, label, slots, capacity GHz
    pytest.param(921, 4, 1.2e9, 1, "Low", 1, 3.84, id="Pi 3: 1 GB (921 MB usable) is Findex 1, one worker"),
    pytest.param(1024, 4, 1.2e9, 1, "Low", 1, 3.84, id="Pi 3: nominal 1 GB, still one worker"),
    pytest.param(3796, 4, 1.5e9, 2, "Med", 2, 4.80, id="Pi 4 4 GB: memory allows 6, Findex 2 allows 2"),
    pytest.param(8062, 4, 2.4e9, 4, "Hi", 4, 7.68, id="Pi 5 8 GB: Findex 4, memory allows 15, the 4 cores cap it"),
]

PAPER = [
    # the frugal-Hadoop paper's own boards and the Findex it gave them
    pytest.param(921, 4, 1.2e9, 1, "Low", id="Raspberry Pi 3B, 1 GB: Findex 1 Low"),
    pytest.param(1993, 8, 2.0e9, 2, "Med", id="Odroid XU4, 2 GB: Findex 2 Med (a 2 GB board gets 2 slots)"),
    pytest.param(3875, 6, 1.8e9, 2, "Med", id="RockPro64, 4 GB at 1.8 GHz: Findex 2 Med"),
    pytest.param(8062, 4, 2.4e9, 4, "Hi", id="Raspberry Pi 5: Findex 4 Hi"),
]


@pytest.mark.parametrize("memory_mb, cores, clock_hz, index, label", PAPER)
def test_findex_of_the_papers_boards(memory_mb, cores, clock_hz, index, label):
    fx = findex_of(memory_mb, cores, clock_hz)
    assert (fx.index, fx.label) == (index, label)
    assert fx.slots == {1: 1, 2: 2}.get(index, min(cores, (memory_mb - F.RESERVE_MB) // F.WORKER_BUDGET_MB))


@pytest.mark.parametrize("memory_mb, cores, clock_hz, index, label, slots, capacity_ghz", PIS)
def test_raspberry_pis(memory_mb, cores, clock_hz, index, label, slots, capacity_ghz):
    facts = board_facts("pi", memory_mb=memory_mb, cores=cores, clock_hz=clock_hz)
    assert (facts.findex, facts.findex_label, facts.slots) == (index, label, slots)
    assert facts.capacity_hz / 1e9 == pytest.approx(capacity_ghz)
    assert facts.refusal() is None
    text = facts.describe()
    assert f"findex       {index} {label}" in text
    assert f"Findex {index} {label}" in text and f"memory {memory_mb} MB - {F.RESERVE_MB} MB reserve" in text
    assert "override: --slots N" in text and "override: --capacity-hz X" in text
    assert "link         unknown, one-way delay unknown" in text  # a supervisor cannot measure its link


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
    assert derive_slots(memory_mb, cores, ports, clock_hz=2.4e9)[0] == expected


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
    for needle in (
        "findex       ",
        "rule: Findex",
        "never more than min(cores",
        "override: --slots N",
        "override: --ports A-B",
        "cluster      lab",
        "discovered on the local network",
    ):
        assert needle in out
