"""Each worker of the two-worker throughput runs (``benchmarks/worker_figures.py``: the
spout on worker A, middle and sink on B, every tuple crossing once), in one process and
without sockets. The sending worker: the spout's engine and an outbox whose ``send`` keeps
every frame; the receiving worker: a codec fed those frames and the engine of the middle
and the sink, one round per frame. Prints tuples per CPU second of each (``time.
process_time``) for the per-tuple chain and the batch-aware one (the spout's runs of 100
with ``emit_many``), several rounds each, alternating: the lower of a chain's two bounds
what two workers with a core each can reach (less the sockets and ZeroMQ's I/O threads).

    python benchmarks/worker_sides_figures.py [--tuples 300000] [--runs 3]
    python benchmarks/against.py REV benchmarks/worker_sides_figures.py   # the same at REV
    python benchmarks/worker_sides_figures.py --instructions   # both workers, cachegrind
    python benchmarks/worker_sides_figures.py --instructions --sides   # and each one's share

It uses only what both the old and the new engine offer (the engine's ``remote_run_sink``,
``remote_row_sink`` and ``wiring.inbox_run_sinks`` where they exist), so ``against.py``
measures either revision. Every round checks that the outbox sent every tuple the spout emitted and that
the sink executed every one.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from squall.supervisor.runtime.engine import Engine
from squall.supervisor.transfer import Outbox, TupleCodec

# The repo root, for tests.worker's user code; appended, so that ``squall`` stays the one
# installed (or, under against.py, the older revision's).
sys.path.append(str(Path(__file__).resolve().parents[1]))
from tests.worker.worker_helpers import user_module  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cachegrind  # noqa: E402  (a sibling benchmark module)

CHAINS = {
    "per-tuple": (user_module("chain_app").Chain3, {"app.reliable": False, "app.rate": 0}),
    "batch": (user_module("batch_app").BatchChain3, {"app.limit": 2**62, "app.run": 100}),
}


def _nothing_leaves(task: int) -> Any:
    def sink(item: Any) -> None:
        raise AssertionError(f"the receiving worker sent {item!r} to task {task} of another worker")

    return sink


def one_round(chain: str, tuples: int, receive: bool = True) -> tuple[float, float, int]:
    """Tuples per CPU second of the sending worker and of the receiving one, and the tuples
    sent: ``tuples`` or a few more (the spout's last run). Without ``receive``, only the
    sending worker's work is done (its receiving figure is 0)."""
    topology, app_conf = CHAINS[chain]
    spec = topology.spec
    conf = {"topology.acker.executors": 0, **app_conf}
    frames: list[bytes] = []
    box = Outbox(lambda _endpoint, frame: frames.append(frame) or True, time.monotonic, batch_size=256)
    executors = spec.executors_with_ackers(0)
    spout_ids = [e.id for e in executors if e.component == "spout"]
    box.place({t: "b:1" for e in executors if e.id not in spout_ids for t in e.tasks})
    kwargs = {"remote_sink": lambda _task: box.put}
    if "remote_run_sink" in inspect.signature(Engine).parameters:
        kwargs["remote_run_sink"] = lambda _task: box.put_run
    if "remote_row_sink" in inspect.signature(Engine).parameters:
        kwargs["remote_row_sink"] = lambda _task: box.put_row
    sender = Engine(spec, topology.classes, conf, executor_ids=spout_ids, **kwargs)
    sender.start()
    started = time.process_time()
    while box.sent_items < tuples:
        sender.run_once()
        box.flush(idle=True)
    send_cpu = time.process_time() - started
    (spout,) = sender.summary()
    if spout.emitted != box.sent_items:
        raise AssertionError(f"{chain}: the spout emitted {spout.emitted}, the outbox sent {box.sent_items}")

    if not receive:
        return box.sent_items / send_cpu, 0.0, box.sent_items
    # A worker's engine, as B's is: it has a remote sink (nothing here is sent through it)
    receiver = Engine(
        spec,
        topology.classes,
        conf,
        executor_ids=[e.id for e in executors if e.id not in spout_ids],
        remote_sink=lambda task: _nothing_leaves(task),
    )
    receiver.start()
    codec_kwargs = {}
    if hasattr(receiver.wiring, "inbox_run_sinks"):  # a received run queued whole, as a worker does
        codec_kwargs["run_sinks"] = receiver.wiring.inbox_run_sinks
    codec = TupleCodec(spec, executors, receiver.wiring.local_tasks, receiver.wiring.sinks, **codec_kwargs)
    started = time.process_time()
    for frame in frames:
        codec.deliver(frame)
        while receiver.run_once():
            pass
    receive_cpu = time.process_time() - started
    sink = next(s for s in receiver.summary() if s.component == "sink")
    if sink.executed != box.sent_items:
        raise AssertionError(f"{chain}: {box.sent_items} tuples sent, the sink executed {sink.executed}")
    return box.sent_items / send_cpu, box.sent_items / receive_cpu, box.sent_items


def instructions(chain: str, small: int, large: int, side: str = "both") -> float:
    """Instructions per tuple through both workers of ``chain`` (valgrind cachegrind), or
    through the sending one alone (``side="sending"``): the difference of two runs of
    ``large`` and ``small`` tuples over the difference of the tuples they sent, so start-up
    cancels."""
    counts = []
    for tuples in (large, small):
        total, out = cachegrind.count(__file__, ["--child", chain, str(tuples), side])
        counts.append((total, int(out.split()[-1])))
    (big, n_big), (little, n_little) = counts
    return (big - little) / (n_big - n_little)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tuples", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--instructions", action="store_true", help="instructions per tuple under cachegrind, not CPU seconds"
    )
    parser.add_argument(
        "--sides", action="store_true", help="with --instructions: the sending worker's share and the receiving one's"
    )
    parser.add_argument("--child", nargs=3, metavar=("CHAIN", "TUPLES", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        chain, tuples, side = args.child
        one_round(chain, 2_000)  # warm-up, as in the timed runs
        print(one_round(chain, int(tuples), receive=side == "both")[2])
        return 0
    if args.instructions:
        if not cachegrind.available():
            print("valgrind is not installed", file=sys.stderr)
            return 2
        for chain in CHAINS:
            per_tuple = instructions(chain, 10_000, 60_000)
            print(f"{chain:<9} chain: {per_tuple:,.0f} instructions per tuple through both workers")
            if args.sides:
                sending = instructions(chain, 10_000, 60_000, "sending")
                print(f"{chain:<9} chain: sending worker {sending:,.0f}, receiving worker {per_tuple - sending:,.0f}")
        return 0
    rates: dict[str, list[tuple[float, float, int]]] = {chain: [] for chain in CHAINS}
    for chain in CHAINS:
        one_round(chain, min(args.tuples, 20_000))  # warm-up
    for _ in range(args.runs):
        for chain in CHAINS:
            rates[chain].append(one_round(chain, args.tuples))
    for chain, got in rates.items():
        for side, i in (("sending", 0), ("receiving", 1)):
            figures = [g[i] for g in got]
            print(
                f"{chain:<9} chain, {side:<9} worker: best {max(figures):9,.0f}, median "
                f"{statistics.median(figures):9,.0f} tuples per CPU second ({args.runs} rounds of {args.tuples:,})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
