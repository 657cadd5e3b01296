"""Synthetic workloads and clusters for tests, benchmarks and the quality table.

* :func:`chain_workload` — Aniello's reference topology as a *measured* workload: a chain
  of ``stages`` components (a spout, then bolts), ``replication`` executors each,
  groupings alternating shuffle, fields, shuffle, ... between consecutive stages.
* :func:`random_workload` — seeded random traffic for speed measurements.
* :func:`pi_cluster` — Raspberry Pi boards, homogeneous or mixed.

Traffic model of the chain (documented in docs/rebalance.md): every spout executor emits
``rate`` tuples/s; every bolt emits one tuple per tuple received. On a shuffle edge an
executor sends its output evenly to every downstream executor. On a fields edge it also
sends to every downstream executor (keys are spread over all of them), with key skew
``skew``: downstream executor k receives a share proportional to 1/(k+1)^skew (0 is
uniform). Load is ``cycles_per_tuple`` x tuples/s handled (emitted for spouts, received
for bolts). Everything is deterministic; :func:`random_workload` uses its own seeded RNG.
"""

from __future__ import annotations

import numpy as np

from squall.rebalance.model import Executor, Node, Workload

# Usable CPU share of a board: the rest is left to the OS, the supervisor and ZeroMQ I/O.
USABLE_SHARE = 0.8
# (name, slots, cores, clock Hz): slots from memory (about 1 worker per 512 MB after the OS).
PI_MODELS = {
    "pi4": (4, 4, 1.5e9),
    "pi3": (2, 4, 1.2e9),
    "zero2": (1, 4, 1.0e9),
}


def chain_workload(
    stages: int,
    replication: int,
    workers: int,
    rate: float = 1000.0,
    skew: float = 0.0,
    cycles_per_tuple: float = 2.0e5,
    name: str = "chain",
) -> Workload:
    """Aniello's chain as a measured workload (see the module doc for the model)."""
    if stages < 2 or replication < 1:
        raise ValueError("a chain needs at least 2 stages and 1 executor per stage")
    executors = []
    out = np.zeros(stages * replication)
    inflow = np.zeros(stages * replication)
    traffic: list[tuple[int, int, float]] = []
    for s in range(stages):
        comp = "spout" if s == 0 else f"bolt{s}"
        for r in range(replication):
            e = s * replication + r
            executors.append(Executor(e, comp, (e + 1, e + 1)))
    out[:replication] = rate
    for s in range(stages - 1):
        fields = s % 2 == 1  # stage 0->1 shuffle, 1->2 fields, 2->3 shuffle, ...
        weights = np.array([1.0 / (k + 1) ** (skew if fields else 0.0) for k in range(replication)])
        weights /= weights.sum()
        for r in range(replication):
            src = s * replication + r
            for k in range(replication):
                dst = (s + 1) * replication + k
                tps = float(out[src] * weights[k])
                traffic.append((src, dst, tps))
                inflow[dst] += tps
        for k in range(replication):
            dst = (s + 1) * replication + k
            out[dst] = inflow[dst]
    load = [cycles_per_tuple * float(out[e] if e < replication else inflow[e]) for e in range(len(executors))]
    edges = [("spout" if s == 0 else f"bolt{s}", f"bolt{s + 1}") for s in range(stages - 1)]
    return Workload(name, workers, tuple(executors), tuple(traffic), tuple(load), tuple(edges))


def random_workload(
    executors: int, workers: int, pairs_per_executor: int = 5, seed: int = 0, name: str = "random"
) -> Workload:
    """``executors`` executors over ~executors/10 components with about
    ``pairs_per_executor`` x executors random traffic pairs (seeded)."""
    rng = np.random.default_rng(seed)
    n_pairs = pairs_per_executor * executors
    src = rng.integers(0, executors, n_pairs)
    dst = rng.integers(0, executors, n_pairs)
    rate = rng.gamma(2.0, 200.0, n_pairs)
    load = rng.uniform(1e7, 1e8, executors)
    execs = tuple(Executor(i, f"c{i // 10}", (i + 1, i + 1)) for i in range(executors))
    traffic = tuple((int(s), int(d), float(r)) for s, d, r in zip(src, dst, rate))
    return Workload(name, workers, execs, traffic, tuple(float(x) for x in load))


def pi_node(node_id: str, model: str) -> Node:
    slots, cores, clock = PI_MODELS[model]
    return Node(node_id, slots, cores * clock * USABLE_SHARE)


def pi_cluster(n: int, heterogeneous: bool = False) -> tuple[Node, ...]:
    """``n`` Pi 4 boards, or a repeating mix pi4, pi3, zero2, pi3 when heterogeneous."""
    mix = ["pi4", "pi3", "zero2", "pi3"] if heterogeneous else ["pi4"]
    return tuple(pi_node(f"pi-{k + 1}", mix[k % len(mix)]) for k in range(n))
