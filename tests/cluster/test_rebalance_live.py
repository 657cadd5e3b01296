"""Live rebalancing on a real local cluster: a running topology moves executors mid-stream
and loses nothing; a declined proposal changes nothing.

The topology (written to a file and submitted like a user's): a finite reliable spout that
numbers its tuples and keeps its position and pending trees across a move, a relay, and a
sink that keeps a tally across a move. Each spout task appends every acked (and failed) id to
a file; each sink task appends "id tally" per tuple — so the test reads exact counts.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import eventually, running_workers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TOTAL = 2500  # tuples per spout task
SPOUTS = 2

TOPOLOGY = textwrap.dedent('''
    """Numbered tuples from a finite reliable spout to a tallying sink (test topology)."""

    import time

    import msgpack

    from squall import Bolt, Grouping, Spout, Topology


    class Numbers(Spout):
        outputs = ["n"]

        def initialize(self, conf, ctx):
            self.total, self.rate = int(conf["live.total"]), float(conf["live.rate"])
            base = f"{conf['live.out']}/spout-{ctx.task}"
            self.acked_log = open(base + ".acked", "a", buffering=1)
            self.failed_log = open(base + ".failed", "a", buffering=1)
            self.task, self.next, self.next_at = ctx.task, 0, 0.0

        def next_tuple(self):
            now = time.monotonic()
            if self.next >= self.total or now < self.next_at:
                return
            self.next_at = max(self.next_at + 1.0 / self.rate, now - 0.05)
            tid = self.task * 1_000_000 + self.next
            self.next += 1
            self.emit([tid], tup_id=tid)

        def ack(self, tid):
            self.acked_log.write(f"{tid}\\n")

        def fail(self, tid):
            self.failed_log.write(f"{tid}\\n")
            self.emit([tid], tup_id=tid)

        def snapshot(self):
            return msgpack.packb({"next": self.next})

        def restore(self, data):
            self.next = msgpack.unpackb(data)["next"]


    class Relay(Bolt):
        outputs = ["n"]

        def process(self, tup):
            self.emit([tup["n"]])


    class Tally(Bolt):
        outputs = []

        def initialize(self, conf, ctx):
            self.log = open(f"{conf['live.out']}/sink-{ctx.task}.log", "a", buffering=1)
            self.tally = 0

        def process(self, tup):
            self.tally += 1
            self.log.write(f"{tup['n']} {self.tally}\\n")

        def snapshot(self):
            return msgpack.packb(self.tally)

        def restore(self, data):
            self.tally = msgpack.unpackb(data)


    class LiveNumbers(Topology):
        numbers = Numbers.spec(par=2)
        relay = Relay.spec(inputs=[numbers], par=2)
        tally = Tally.spec(inputs={relay: Grouping.fields("n")}, par=2)
''')


@pytest.fixture(scope="module")
def live_cluster(tmp_path_factory):
    from squall.localcluster import LocalCluster

    with LocalCluster(supervisors=3, slots=2, data_dir=tmp_path_factory.mktemp("live")) as c:
        yield c


def write_topology(tmp_path: Path) -> str:
    path = tmp_path / "live_numbers.py"
    path.write_text(TOPOLOGY)
    return str(path)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def snapshots_sent_once(event: dict) -> bool:
    """Nimbus's count in a finished migration's event: every moved executor's snapshot was
    fetched by its new owner's board exactly once (not with every push of the assignment)."""
    sent = event.get("snapshots_sent") or {}
    moved = {str(ex) for ex in event["moved"]}
    return bool(moved) and set(sent) == moved and all(s["sends"] == 1 and s["bytes"] > 0 for s in sent.values())


def test_a_live_rebalance_mid_stream_loses_nothing(live_cluster, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    conf = {"live.total": TOTAL, "live.rate": 250.0, "live.out": str(out)}
    name = live_cluster.submit(write_topology(tmp_path), name="live", workers=3, conf=conf)
    before = eventually(lambda: running_workers(live_cluster, name), what="live running")
    with live_cluster.client() as c:
        eventually(lambda: c.assignment(name)["traffic"], what="measured traffic")
    eventually(lambda: sum(len(lines(out / f"spout-{t}.acked")) for t in (1, 2)) > 400, what="stream under way")

    with live_cluster.client() as c:
        c.rebalance(name, scheduler="online")
    started = time.monotonic()
    with live_cluster.client() as c:
        (event,) = c.events(name)
        assert (event["trigger"], event["decision"]) == ("requested", "applied")
        assert event["moved"], "the online proposal moved no executor"
        done = eventually(
            lambda: (lambda e: e if e.get("paused_s") is not None else None)(c.events(name)[0]),
            timeout_s=60,
            what="migration finished",
        )
    assert done["paused_s"] < 30, done
    assert snapshots_sent_once(done), done  # Nimbus sent each moved executor's snapshot down once
    after = eventually(lambda: running_workers(live_cluster, name), what="running after the move")
    moved = set(done["moved"])
    for key, (pid, execs) in before.items():  # untouched workers kept their process
        if key in after and not execs & moved and after[key][1] == execs:
            assert after[key][0] == pid

    ids = {t: {t * 1_000_000 + k for k in range(TOTAL)} for t in (1, 2)}  # spout tasks are 1 and 2
    for t in (1, 2):
        eventually(
            lambda t=t: set(map(int, lines(out / f"spout-{t}.acked"))) >= ids[t],
            timeout_s=90,
            what=f"every tuple of spout task {t} acked",
        )
    all_ids = ids[1] | ids[2]
    seen: list[int] = []
    for sink in out.glob("sink-*.log"):
        rows = [line.split() for line in sink.read_text().splitlines()]
        assert [int(tally) for _, tally in rows] == list(range(1, len(rows) + 1)), f"{sink.name}: tally reset"
        seen += [int(n) for n, _ in rows]
    failed = [n for t in (1, 2) for n in lines(out / f"spout-{t}.failed")]
    assert failed == [], f"{len(failed)} trees failed and were replayed"
    assert sorted(seen) == sorted(all_ids), f"sink saw {len(seen)} tuples, {len(set(seen))} distinct"
    with live_cluster.client() as c:
        stats = c.stats(name)
        c.kill(name, 0)
    assert stats["topology"] == name and stats["workers"] >= 1
    assert time.monotonic() - started < 200


def test_a_declined_proposal_changes_nothing(live_cluster, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    conf = {
        "live.total": 10**6,
        "live.rate": 100.0,
        "live.out": str(out),
        "topology.reschedule.timeout.secs": 10**6,
        "topology.metrics.window.secs": 2,
        "topology.reschedule.interval.secs": 1,
    }
    name = live_cluster.submit(write_topology(tmp_path), name="steady", workers=3, scheduler="online", conf=conf)
    before = eventually(lambda: running_workers(live_cluster, name), what="steady running")
    with live_cluster.client() as c:
        declined = eventually(
            lambda: (lambda es: es if len(es) >= 3 else None)(c.events(name)), timeout_s=30, what="three evaluations"
        )
        assert all(e["decision"] == "declined" for e in declined), declined
        assert running_workers(live_cluster, name) == before  # same ports, executors and pids
        c.kill(name, 0)
