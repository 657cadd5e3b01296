"""``squall schedule``: run a scheduler on a workload file and a nodes file, offline, or on
a running topology's live measurements (``--topology NAME``: Nimbus's current workload,
boards and assignment, exactly as its schedulers see them; nothing is applied).

Reads measured workloads (one topology or a list) and boards from JSON, prints the
assignment and its cost as a table, or as one JSON object with ``--json``, which also
carries the latency model's ``predicted`` figures (``predicted_latency_ms`` and per-board
``utilisation``) for the proposed placement and, with a current one, for the current. Bad input (a
missing or malformed file, a field of the wrong type, an unknown executor in a traffic
row, ...) is reported as ``squall schedule: <file>: <field>: <problem>`` with exit code 2.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from squall.cli import UsageError
from squall.cli.keygen import add_keys_option, keys_from_args

PARAMS = ("alpha", "beta", "gamma", "delta", "epsilon")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "schedule",
        help="place a measured workload on boards with a scheduler and print the cost",
        description="Place measured workloads on nodes with one of the schedulers "
        "(round_robin, offline, online, partition) and print the assignment and its cost.",
    )
    p.add_argument("--workload", metavar="W.json", help="one workload object or a list of them")
    p.add_argument("--nodes", metavar="N.json", help='[{"id", "slots", "capacity_hz"}, ...]')
    p.add_argument("--topology", metavar="NAME", help="use a running topology's live workload, boards and assignment")
    p.add_argument(
        "--nimbus", help="with --topology: Nimbus HOST:PORT or A,B,C (default $SQUALL_NIMBUS or localhost:6627)"
    )
    add_keys_option(p)
    p.add_argument(
        "--scheduler", default="online", help="round_robin, offline, online, partition or latency (default online)"
    )
    for name in PARAMS:
        p.add_argument(f"--{name}", type=float, default=None, help=f"scheduler parameter {name}")
    p.add_argument("--strict", action="store_true", help="fail instead of shrinking workers or overloading a node")
    p.add_argument("--current", metavar="A.json", help="the current assignment, to reschedule from it")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run)


def _load_json(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def run(args: argparse.Namespace) -> int:
    # Imported here: the other verbs must not pay for numpy at start-up.
    from squall.rebalance import (
        Assignment,
        InfeasibleError,
        InvalidInputError,
        SchedulerParams,
        evaluate,
        get_scheduler,
        nodes_from_list,
        workloads_from_json,
    )
    from squall.rebalance.latency import predict

    try:
        scheduler = get_scheduler(args.scheduler)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    given = {name: getattr(args, name) for name in PARAMS if getattr(args, name) is not None}
    try:
        params = SchedulerParams(**given, strict=args.strict)
    except InvalidInputError as exc:
        raise UsageError(f"--{exc}") from None
    live = None
    if args.topology:
        if args.workload or args.nodes:
            raise UsageError("give either --topology or --workload and --nodes")
        live = _live_model(args)
        workload_data, nodes_data, where_w, where_n = live["workload"], live["nodes"], "live workload", "live nodes"
    else:
        if not (args.workload and args.nodes):
            raise UsageError("give --workload and --nodes (or --topology NAME)")
        workload_data, nodes_data = _load_json(args.workload), _load_json(args.nodes)
        where_w, where_n = args.workload, args.nodes
    try:
        workloads = workloads_from_json(workload_data)
    except InvalidInputError as exc:
        raise UsageError(f"{where_w}: {exc}") from None
    try:
        nodes = nodes_from_list(nodes_data)
    except InvalidInputError as exc:
        raise UsageError(f"{where_n}: {exc}") from None
    current = None
    if live is not None and live["current"]:
        current = Assignment.from_dict(live["current"])
    if args.current:
        data = _load_json(args.current)
        if isinstance(data, dict) and "assignment" in data:  # the output of --json
            data = data["assignment"]
        try:
            current = Assignment.from_dict(data)
        except InvalidInputError as exc:
            raise UsageError(f"{args.current}: {exc}") from None
    try:
        assignment = scheduler.schedule(workloads, nodes, params, current)
        cost = evaluate(assignment, workloads, nodes)
    except (InfeasibleError, InvalidInputError) as exc:
        raise UsageError(f"cannot schedule: {exc}") from None
    scheduled = {w.topology for w in workloads}
    rows = [r for r in assignment.to_dict() if r["topology"] in scheduled]
    proposed = predict(assignment, workloads, nodes).to_dict()
    now = None
    if current is not None and all(current.has_executor(w.topology, e.id) for w in workloads for e in w.executors):
        now = predict(current, workloads, nodes).to_dict()
    if args.json:
        out = {
            "scheduler": scheduler.name,
            "assignment": rows,
            "cost": cost.to_dict(),
            "predicted_latency_ms": proposed["predicted_latency_ms"],
            "utilisation": proposed["utilisation"],
            "predicted": {"proposed": proposed, "current": now},
        }
        if live is not None:
            out["measured_latency_ms"] = live.get("measured_latency_ms")
        print(json.dumps(out, indent=2))
        return 0
    print(render_table(scheduler.name, workloads, nodes, assignment, cost))
    print(render_prediction(proposed, now, live.get("measured_latency_ms") if live else None))
    return 0


def render_prediction(proposed: dict, current: dict | None, measured_ms: float | None) -> str:
    """The latency model's view, proposed (and current) placement."""

    def line(label: str, p: dict) -> str:
        latency = p["predicted_latency_ms"]
        util = ", ".join(f"{n} {u:.0%}" for n, u in p["utilisation"].items())
        text = f"{label}: predicted latency {'-' if latency is None else f'{latency:.3g} ms'}; utilisation {util}"
        return text + (f"; over limits: {'; '.join(p['violations'])}" if p["violations"] else "")

    out = [line("proposed", proposed)]
    if current is not None:
        out.append(line("current ", current) + (f"; measured {measured_ms:.3g} ms" if measured_ms else ""))
    out += [f"assumed: {a}" for a in proposed["assumptions"]]
    return "\n".join(out)


def _live_model(args: argparse.Namespace) -> dict:
    from squall.client import NimbusClient, NimbusError, NimbusUnreachable

    try:
        with NimbusClient(args.nimbus, keys=keys_from_args(args)) as client:
            stats = client.stats(args.topology)
    except (NimbusUnreachable, NimbusError, ValueError) as exc:
        raise UsageError(f"cannot read topology {args.topology!r} from Nimbus: {exc}") from None
    model = stats.get("model") if isinstance(stats, dict) else None
    if not isinstance(model, dict):
        raise UsageError(f"Nimbus did not send the live model of {args.topology!r} (an older Nimbus?)")
    return model


def _hz(value: float) -> str:
    return f"{value / 1e9:.2f} GHz"


def render_table(name: str, workloads: Any, nodes: Any, assignment: Any, cost: Any) -> str:
    """Per node: workers, executors by component, load vs capacity; then the cost."""
    component = {(w.topology, e.id): e.component for w in workloads for e in w.executors}
    loads = dict(cost.node_load_hz)
    header = ("node", "slots", "workers", "executors", "load / capacity")
    lines = [header]
    for node in sorted(nodes, key=lambda n: n.id):
        workers = assignment.workers_on(node.id)
        counts: Counter[str] = Counter()
        for t, w in workers:
            for e in assignment.executors_on(t, w):
                if (t, e) in component:
                    counts[f"{t}/{component[(t, e)]}"] += 1
        share = loads.get(node.id, 0.0) / node.capacity_hz
        flag = "  OVERLOADED" if node.id in cost.overloaded else ""
        lines.append(
            (
                node.id,
                f"{len(workers)}/{node.slots}",
                " ".join(f"{t}:{w}" for t, w in workers) or "-",
                ", ".join(f"{c} x{k}" for c, k in sorted(counts.items())) or "-",
                f"{_hz(loads.get(node.id, 0.0))} / {_hz(node.capacity_hz)} ({share:.0%}){flag}",
            )
        )
    widths = [max(len(row[k]) for row in lines) for k in range(len(header))]
    out = [f"scheduler: {name}"]
    out += ["  ".join(cell.ljust(widths[k]) for k, cell in enumerate(row)).rstrip() for row in lines]
    out.append("")
    out.append(f"inter-node traffic:   {cost.inter_node_tps:.1f} tuples/s")
    out.append(f"inter-worker traffic: {cost.inter_worker_tps:.1f} tuples/s")
    out.append(f"overloaded nodes:     {', '.join(cost.overloaded) or 'none'}")
    return "\n".join(out)
