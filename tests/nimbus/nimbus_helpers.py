"""Builders shared by the Nimbus tests: events in, commands out, no sockets."""

from __future__ import annotations

from typing import Any

from squall import messages as M
from squall.experiments.reference import chain_topology
from squall.nimbus.state import NimbusState, Send
from squall.nimbus.store import Store

CLI = b"cli"


def peer_of(node: str) -> bytes:
    return f"peer-{node}".encode()


def new_state(store: Store | None = None, **conf: Any) -> NimbusState:
    return NimbusState(store or Store(":memory:"), conf)


def register(
    st: NimbusState,
    node: str,
    ports: list[int],
    now: float,
    peer: bytes | None = None,
    capacity_hz: float = 1e9,
    pid: int = 100,
) -> list[Send]:
    msg = M.RegisterSupervisor(node, f"host-{node}", ports, capacity_hz, 1e9, 4, 1024, pid)
    return st.handle(peer or peer_of(node), msg, now)


def heartbeat(
    st: NimbusState, node: str, now: float, workers: list[M.WorkerReport] | None = None, peer: bytes | None = None
) -> list[Send]:
    return st.handle(peer or peer_of(node), M.Heartbeat(node, 1, workers or []), now)


def heartbeat_running(st: NimbusState, node: str, now: float) -> list[Send]:
    """A heartbeat from ``node`` listing every worker last pushed to it (as a supervisor that
    got its assignment reports them), so Nimbus has nothing to send again."""
    pushed = st.supervisors[node].last_pushed or []
    reports = [M.WorkerReport(w.topology, w.port, 1, "running", w.assignment_version) for w in pushed]
    return heartbeat(st, node, now, workers=reports)


def chain_spec(stages: int = 3, replication: int = 2) -> dict[str, Any]:
    return chain_topology(stages, replication).spec.to_dict()


def cyclic_chain_spec() -> dict[str, Any]:
    """The chain with stage2 feeding stage1 back and subscribing to itself: two cycles."""
    spec = chain_spec()
    stage1, stage2 = (c for c in spec["components"] if c["name"] in ("stage1", "stage2"))
    shuffle = {"type": "shuffle", "fields": []}
    stage1["inputs"].append({"component": "stage2", "stream": "default", "grouping": shuffle})
    stage2["inputs"].append({"component": "stage2", "stream": "default", "grouping": shuffle})
    return spec


def submit(
    st: NimbusState,
    name: str,
    now: float,
    workers: int | None = 2,
    spec: dict | None = None,
    scheduler: str = "round_robin",
    conf: dict | None = None,
    rid: int = 1,
) -> list[Send]:
    msg = M.SubmitTopology(
        rid, name, spec if spec is not None else chain_spec(), b"bundle-bytes", scheduler, workers, conf or {}
    )
    return st.handle(CLI, msg, now)


def replies(cmds: list[Send]) -> list[M.Reply]:
    return [c.msg for c in cmds if isinstance(c.msg, M.Reply)]


def reply(cmds: list[Send]) -> M.Reply:
    (r,) = replies(cmds)
    return r


def pushes(cmds: list[Send]) -> dict[str, M.SupervisorAssignment]:
    """The last SupervisorAssignment per supervisor in a command list."""
    return {c.msg.supervisor_id: c.msg for c in cmds if isinstance(c.msg, M.SupervisorAssignment)}


def workers_of(push: dict[str, M.SupervisorAssignment], topology: str) -> dict[tuple[str, int], list[int]]:
    """(node, port) -> executors of ``topology`` across the pushed sets."""
    return {
        (node, w.port): sorted(w.executors) for node, sa in push.items() for w in sa.workers if w.topology == topology
    }


def ask(st: NimbusState, msg: Any, now: float) -> M.Reply:
    return reply(st.handle(CLI, msg, now))
