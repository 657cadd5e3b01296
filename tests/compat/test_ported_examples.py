"""The ported streamparse quickstart word count and heron examples run in one process with
the counts their code implies: every word counted once by the one task its key maps to,
every tree acked (word count) or exactly half failed (half acking), every stream's tuples
where they were sent (multi-stream), ticks delivered, heron's global counter in step."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from squall.topology.loader import load_topology
from tests.runtime.runtime_helpers import FakeClock, by_task, pump, start_engine

REPO = Path(__file__).resolve().parents[2]
PORTED = REPO / "examples" / "ported"
STREAMPARSE_WORDCOUNT = PORTED / "wordcount" / "topologies" / "wordcount.py"
HERON = PORTED / "heron" / "heron_examples"


def run_rounds(topology: type, rounds: int, clock: FakeClock, tick_every: int = 0) -> Any:
    """Start ``topology`` on ``clock``, run ``rounds`` rounds (advancing the clock by one
    second every ``tick_every`` rounds, so tick tuples fire), then stop the spouts and run
    until nothing is queued or pending."""
    engine = start_engine(topology, clock=clock)
    for i in range(1, rounds + 1):
        engine.run_once()
        if tick_every and i % tick_every == 0:
            clock.advance(1.0)
    engine.deactivate()
    pump(engine)
    assert engine.idle(), "every tree completed"
    return engine


def instances(engine: Any, component: str) -> list[Any]:
    return list(by_task(engine, component).values())


def test_streamparse_quickstart_wordcount_counts_every_word_once_in_the_task_its_key_picks() -> None:
    topology = load_topology(str(STREAMPARSE_WORDCOUNT))
    assert topology.spec.name == "WordCount"
    engine = run_rounds(topology, 200, FakeClock())
    (spout,) = instances(engine, "word_spout")
    bolts = instances(engine, "count_bolt")
    (spout_stats,) = [s for s in engine.summary() if s.component == "word_spout"]
    (bolt_stats,) = [s for s in engine.summary() if s.component == "count_bolt"]
    emitted = spout_stats.emitted
    assert emitted > 1000 and bolt_stats.executed == emitted and bolt_stats.emitted == emitted
    # The spout cycles four words from the first: word i of the cycle went out ceil((n - i) / 4) times.
    words = ["apple", "pear", "plum", "fig"]
    sent = Counter({w: len(range(i, emitted, 4)) for i, w in enumerate(words)})
    seen = Counter()
    for bolt in bolts:
        for word, n in bolt.counter.items():
            assert word not in seen, f"{word!r} counted by two tasks: fields grouping broken"
            seen[word] = n
    assert seen == Counter({w: n * (5 if w == "fig" else 1) for w, n in sent.items()})
    assert sum(b.total for b in bolts) == sum(seen.values())
    assert {b.component_name for b in bolts} == {"count_bolt"} and {b.topology_name for b in bolts} == {"WordCount"}
    assert sorted(b.context["taskid"] for b in bolts) == sorted(b.task_id for b in bolts)


def test_heron_word_count_acks_every_tree_and_counts_every_word() -> None:
    topology = load_topology(str(HERON / "word_count_topology.py"), ["wc"])
    assert topology.spec.name == "wc"
    assert topology.spec.config["topology.reliability.mode"] == "ATLEAST_ONCE"
    from squall.compat.heronpy.api import global_metrics

    before = global_metrics.metricsContainer.value.get("count")
    before = before.value if before else 0
    engine = run_rounds(topology, 300, FakeClock(), tick_every=100)
    spouts = instances(engine, "word_spout")
    bolts = instances(engine, "count_bolt")
    emitted = sum(s.emit_count for s in spouts)
    assert emitted > 1000
    assert sum(s.ack_count for s in spouts) == emitted and sum(s.fail_count for s in spouts) == 0
    assert sum(b.total for b in bolts) == emitted
    assert global_metrics.metricsContainer.value["count"].value - before == emitted
    assert all(b.ticks == 3 for b in bolts), "a tick each second the clock moved"


def test_heron_half_acking_fails_every_other_tuple_of_each_task() -> None:
    topology = load_topology(str(HERON / "half_acking_topology.py"), ["halfack"])
    engine = run_rounds(topology, 300, FakeClock(), tick_every=150)
    spouts = instances(engine, "word_spout")
    bolts = instances(engine, "half_ack_bolt")
    emitted = sum(s.emit_count for s in spouts)
    acked, failed = sum(s.ack_count for s in spouts), sum(s.fail_count for s in spouts)
    assert emitted > 1000 and acked + failed == emitted
    # Each task acks its odd tuples and fails its even ones.
    assert failed == sum(b.total // 2 for b in bolts) and acked == sum(b.total - b.total // 2 for b in bolts)
    assert all(b.ticks == 2 for b in bolts)


def test_heron_multi_stream_delivers_each_stream_where_it_was_sent() -> None:
    topology = load_topology(str(HERON / "multi_stream_topology.py"))
    assert topology.spec.name == "MultiStream"
    assert topology.spec.config["topology.acker.executors"] == 0, "heron's default: at most once"
    engine = run_rounds(topology, 200, FakeClock())
    spouts = instances(engine, "spout")
    words = sum(s.emit_count for s in spouts)
    errors = sum(s.error_count for s in spouts)
    assert words > 1000 and errors == sum(s.emit_count // 100 for s in spouts) > 0
    (aggregator,) = instances(engine, "stream_aggregator")
    assert aggregator.stream_counter == Counter({"default": words, "error": errors})
    assert sum(b.total for b in instances(engine, "count_bolt")) == words


def test_heron_script_without_its_argument_exits_as_it_would_under_heron() -> None:
    from squall.topology.loader import LoadError

    with pytest.raises(LoadError, match=r"the script exited with 1 \(arguments: \[\]\)"):
        load_topology(str(HERON / "word_count_topology.py"))
