"""The local moves the ``latency`` search tries, and where it tries them.

An executor may move to the workers of its busiest neighbours (up to
``NEIGHBOUR_WORKERS``), to its topology's least busy worker, or to a new worker (its
topology's first empty one) on the least busy board with a free slot; a worker may move to
another board with a free slot (the ``CANDIDATE_BOARDS`` least busy on a large cluster).
These functions only *propose*: every move is priced exactly by the
:class:`~squall.rebalance.latency_state.State` before the search takes it.

Guarantees: candidates come in a fixed order (ties broken by index), so the search is
deterministic; a proposed board always has a free slot (``free`` minus the workers the
state puts there); an emptied worker gives its slot back (:func:`unplace`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from squall.rebalance.latency_state import State

NEIGHBOUR_WORKERS = 3  # an executor is tried in the workers of its 3 busiest neighbours
CANDIDATE_BOARDS = 8  # boards tried for a worker move on a large cluster (least busy first)


def free_slots(state: State, free: Mapping[str, int]) -> list[int]:
    return [free.get(n.id, 0) - state.workers_count(k) for k, n in enumerate(state.net.nodes)]


def vacate(state: State, g: int, w: int) -> None:
    old = state.move_executor(g, w)
    if not state.w_count[old]:
        unplace(state, old)


def unplace(state: State, w: int) -> None:
    """An empty worker gives its board slot back (it is never started)."""
    if state.w_count[w]:
        return
    state.move_worker(w, -1)


def least_busy_workers(state: State) -> dict[int, list[int]]:
    """Per topology, its placed workers from the least busy, as at the start of a pass.
    Taken once per pass, not per executor: a pass over 10,000 executors would otherwise
    price every worker 10,000 times. A candidate is only proposed here; every move is
    priced exactly before it is taken."""
    by_topology: dict[int, list[tuple[float, int]]] = {}
    for w, (t, _label) in enumerate(state.worker_ids):
        if state.w_count[w]:
            by_topology.setdefault(t, []).append((state.worker_cores(w), w))
    return {t: [w for _c, w in sorted(rows)] for t, rows in by_topology.items()}


def spare_worker(state: State, free: Mapping[str, int]) -> dict[int, int]:
    """Per topology, its first empty worker, when some board has a free slot for it (else
    empty). Trying a move undoes it, so this changes only when a move is taken: it is
    taken again then, not for every executor (a pass over all workers and boards each)."""
    if not any(s > 0 for s in free_slots(state, free)):
        return {}
    spare: dict[int, int] = {}
    for w, (t, _label) in enumerate(state.worker_ids):
        if not state.w_count[w] and t not in spare:
            spare[t] = w
    return spare


def executor_candidates(
    state: State,
    g: int,
    least_busy: Mapping[int, Sequence[int]],
    spare: Mapping[int, int],
    rate_to: Mapping[int, float] | None = None,
) -> list[int]:
    """Workers to try executor ``g`` in, in order. ``rate_to`` (items/s between ``g`` and
    each worker, summed over ``g``'s edges in order, as :class:`GainBound` has it) saves
    summing them again; the same floats either way."""
    net = state.net
    t = net.ex_topo[g]
    mine = state.exec_worker[g]
    if rate_to is None:
        rate_to = {}
        for k in net.adjacent[g]:
            s, d, rate, _kappa, _kind = net.edges[k]
            other = state.exec_worker[d if s == g else s]
            rate_to[other] = rate_to.get(other, 0.0) + rate
    # Busiest first, ties by index: sorted by index, then by rate descending (a stable sort,
    # reverse included, keeps the index order among equal rates) -- the order of sorting
    # (-rate, worker) pairs, without making a pair and a negated float per worker.
    out = [w for w in rate_to if w != mine]
    out.sort()
    out.sort(key=rate_to.__getitem__, reverse=True)
    del out[NEIGHBOUR_WORKERS:]
    w_count = state.w_count
    for w in least_busy.get(t, ()):
        if w != mine and w_count[w]:
            if w not in out:
                out.append(w)
            break
    if w_count[mine] > 1 and t in spare:
        out.append(spare[t])  # an empty worker: neither a neighbour's nor the least busy
    return out


def least_busy_board(state: State, free: Mapping[str, int]) -> int:
    slots = free_slots(state, free)
    options = [n for n in range(len(state.net.nodes)) if slots[n] > 0]
    return min(options, key=lambda n: (state.rho(n), n))


def board_candidates(state: State, w: int, slots: Sequence[int]) -> list[int]:
    """Boards worker ``w`` may move to, given each board's free slots (:func:`free_slots`,
    taken once per pass and again after a move: a scan of every board per worker was
    most of a pass over 1,000 workers that found no board with a free slot)."""
    mine = state.worker_node[w]
    options = [n for n in range(len(state.net.nodes)) if n != mine and slots[n] > 0]
    if len(options) > CANDIDATE_BOARDS:
        options = sorted(options, key=lambda n: (state.rho(n), n))[:CANDIDATE_BOARDS]
    return options
