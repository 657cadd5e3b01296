"""The ``latency`` scheduler: search placements that minimise the latency model's prediction.

The parts, one idea each: :mod:`~squall.rebalance.latency_network` (the model's constants
for the workloads and boards), :mod:`~squall.rebalance.latency_state` (a placement priced
as a sum of per-board and per-edge terms, re-priced incrementally as things move),
:mod:`~squall.rebalance.latency_moves` (which moves are tried) and this module (the seeds
and the passes of best-improving moves).

:func:`schedule` starts from several seeds — the current placement, ``online`` with
beta = 1 (use every board it may) and ``round_robin`` — and improves each by local moves:
an executor to another worker (a neighbour's, the least busy one, or a new worker on the
least busy board with a free slot) and a worker to another board. Moves are tried in a
fixed order and the best improving one is taken, so the result is deterministic. The
objective is lexicographic: first the excess over the hard limits (board utilisation
above ``MAX_UTILISATION``, memory), then predicted latency. The number of boards used
falls out of it: there is no beta.

Guarantees: every executor placed once; at most ``min(workers, executors)`` workers per
topology and no more workers on a board than its free slots; a placement within the hard
limits is returned whenever a seed or a move finds one (else the least violating one, as
``online`` places load above capacity when it must).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from squall.rebalance import online, round_robin
from squall.rebalance.assignment import Assignment
from squall.rebalance.errors import InfeasibleError
from squall.rebalance.latency import MAX_UTILISATION
from squall.rebalance.latency_bound import GainBound, Removal
from squall.rebalance.latency_moves import (
    board_candidates,
    executor_candidates,
    free_slots,
    least_busy_board,
    least_busy_workers,
    spare_worker,
    vacate,
)
from squall.rebalance.latency_network import Network
from squall.rebalance.latency_state import State
from squall.rebalance.params import SchedulerParams
from squall.rebalance.prepare import Request, scheduler, worker_budget
from squall.rebalance.relabel import keep_worker_ids

MAX_PASSES = 12
# A move must save this share of the predicted latency: smaller gains are within the
# model's noise, and chasing them costs passes (and could cycle on rounding).
IMPROVEMENT = 1e-3
SEARCH_EVERY_SEED_UP_TO = 400  # executors: above this only the best seed is improved
# Above SEARCH_EVERY_SEED_UP_TO a seed whose excess_floor is above the least excess of the
# seeds priced before it by this much is not priced (the objective rounds the excess to 9
# decimals; the floor's own rounding is ~1e-12 of it).
EXCESS_MARGIN = 1e-6


def _place(req: Request, params: SchedulerParams, current: Assignment | None) -> Assignment:
    """Place ``workloads`` on ``nodes`` minimising predicted latency (see module doc)."""
    budget = worker_budget(req, params)
    net = Network(req.workloads, req.nodes)
    seeds: list[Assignment] = []
    names = [w.topology for w in req.workloads]
    if all(req.hint.has_executor(w.topology, e.id) for w in req.workloads for e in w.executors):
        if all(len(req.hint.workers_of(t)) <= budget[t] for t in names):
            seeds.append(req.hint)
    spread = replace(params, beta=1.0, strict=False)
    for make in (
        lambda: online.schedule(req.workloads, req.nodes, spread, current),
        lambda: round_robin.schedule(req.workloads, req.nodes, params, current),
    ):
        try:
            seeds.append(make().restrict(names))
        except InfeasibleError:
            continue
    if not seeds:
        raise InfeasibleError("no seed placement: not enough free slots")
    free = dict(req.free)
    only_best = len(net.ex_key) > SEARCH_EVERY_SEED_UP_TO
    scored: list[tuple[tuple[float, float], int, State]] = []
    for k, seed in enumerate(seeds):
        if only_best and scored and excess_floor(net, seed) > min(s[0][0] for s in scored) + EXCESS_MARGIN:
            continue  # it breaks the hard limits by more than a seed already priced: never the best
        labels = {t: _labels(seed, t, budget[t]) for t in names}
        state = net.state_of(seed, labels)
        scored.append((state.objective(), k, state))
    scored.sort(key=lambda x: (x[0], x[1]))
    to_improve = [s for _, _, s in scored]
    if only_best:
        to_improve = to_improve[:1]
    best: tuple[tuple[float, float], int, State] | None = None
    for k, state in enumerate(to_improve):
        _improve(state, free)
        key = (state.objective(), k, state)
        if best is None or key[:2] < best[:2]:
            best = key
    assert best is not None
    return keep_worker_ids(req.hint, best[2].to_assignment())


# No up-front load check: above capacity it returns the least violating placement (module doc).
schedule = scheduler(_place, load_check=False)


def excess_floor(net: Network, assignment: Assignment) -> float:
    """The excess over the hard limits of ``assignment`` (every executor of ``net``'s
    workloads in it), as :meth:`State.excess` prices it, without building a state: per
    worker its CPU (its executors' cycles, the loop's overhead and the items crossing its
    boundary, as the model counts them), per board its utilisation and its workers'
    memory. Only the aggregates the excess reads, so a fraction of a state's cost (no
    edge delays, queues or links).

    The sums run in another order than the state's, so the value may differ from
    :meth:`State.excess` in its last bits (relative ~1e-12, far below
    ``EXCESS_MARGIN``); the search compares it with that margin."""
    gw: dict[tuple[str, int], int] = {}
    w_topo: list[int] = []
    w_node: list[int] = []
    w_cycles: list[float] = []
    w_cross: list[float] = []
    ex_worker: list[int] = []
    ex_cycles, topos = net.ex_cycles, net.topos
    for g, (name, ex) in enumerate(net.ex_key):
        key = (name, assignment.worker_of(name, ex))
        w = gw.get(key)
        if w is None:
            w = gw[key] = len(w_topo)
            w_topo.append(net.ex_topo[g])
            w_node.append(net.node_index[assignment.node_of_worker(*key)])
            w_cycles.append(0.0)
            w_cross.append(0.0)
        w_cycles[w] += ex_cycles[g]
        ex_worker.append(w)
    for s, d, rate, _kappa, _kind in net.edges:
        ws, wd = ex_worker[s], ex_worker[d]
        if ws != wd:
            w_cross[ws] += rate
            w_cross[wd] += rate
    cores = [0.0] * len(net.nodes)
    mem = [0.0] * len(net.nodes)
    used = [False] * len(net.nodes)
    for w, n in enumerate(w_node):
        topo = topos[w_topo[w]]
        cores[n] += (w_cycles[w] + topo.overhead_hz + topo.transfer_cycles * w_cross[w] / 2.0) / net.terms[n].clock_hz
        mem[n] += topo.worker_mb
        used[n] = True
    total = 0.0
    for n, terms in enumerate(net.terms):
        if not used[n]:
            continue
        total += max(0.0, (cores[n] + terms.background_cores) / terms.cores - MAX_UTILISATION)
        if terms.memory_mb > 0:
            total += max(0.0, mem[n] - terms.memory_mb) / terms.memory_mb
    return total


def _labels(seed: Assignment, topology: str, budget: int) -> list[int]:
    used = sorted(seed.workers_of(topology))
    taken = set(used)  # once, not per candidate id
    fresh = (x for x in range(budget + len(used)) if x not in taken)
    return used + [next(fresh) for _ in range(max(0, budget - len(used)))]


def _better(new: tuple[float, float], old: tuple[float, float]) -> bool:
    if new[0] < old[0] - 1e-12:
        return True
    return new[0] <= old[0] + 1e-12 and new[1] < old[1] * (1.0 - IMPROVEMENT) - 1e-15


def _improve(state: State, free: Mapping[str, int], skip: bool = True) -> GainBound:
    """Passes of best-improving moves until a pass changes nothing (at most MAX_PASSES).

    The first pass tries every executor and every worker. A later pass tries only those
    near what the previous pass moved (:func:`_near`): elsewhere nothing a move is priced
    from changed, so a pass over everything would price the same moves again and decline
    them again (on the speed benchmark's workloads the second full pass found no move at
    all and took as long as the first). The moves taken, and their order, are those of
    full passes whenever the full pass would have taken nothing outside that region.

    With ``skip`` an executor's trial moves that :class:`GainBound` shows cannot save
    ``IMPROVEMENT`` are not priced (the same moves are taken: see
    :mod:`squall.rebalance.latency_bound`); returns the bound, which counts them."""
    net = state.net
    bound = GainBound(state)
    executors: Sequence[int] = range(len(net.ex_key))
    workers: Sequence[int] = range(len(state.worker_ids))
    for _ in range(MAX_PASSES):
        changed = False
        moved: set[int] = set()  # workers that gained, lost or changed board in this pass
        boards: set[int] = set()  # the boards they were and are on
        shifted: set[int] = set()  # executors moved (by an executor or a worker move)
        current = state.objective()
        least_busy = least_busy_workers(state)
        spare = spare_worker(state, free)
        for g in executors:
            best, best_w = current, -1
            # The bound needs what moving g off its board does there: read from the first
            # exact trial to another board (the same for every other board).
            mine = state.worker_node[state.exec_worker[g]]
            removal: Removal | None = None
            edges = bound.edges_of(g) if skip else None
            # A bound on that without the trial is often enough: within the limits, and
            # above them when g's board is and stays within them.
            loose: Removal | None = None
            quick = False  # loose is GainBound.removal's quick form: refined before a move is priced
            if edges is not None:
                if current[0] == 0.0:
                    loose = Removal(bound.removal(g, edges, quick=True), 0.0, 0.0)
                    quick = True
                else:
                    loose = bound.removal_within_limits(g, edges)
            rate_to = edges.rate_to if edges is not None else None
            for w in executor_candidates(state, g, least_busy, spare, rate_to):
                board = least_busy_board(state, free) if state.worker_node[w] < 0 else -1
                known = removal or loose
                if edges is not None and board < 0 and known is not None:
                    if bound.skips(g, w, known, edges, current, IMPROVEMENT):
                        bound.skipped += 1
                        continue
                    if quick and state.worker_node[w] != mine:
                        # The quick form is looser: skip exactly the moves the full one skips.
                        quick = False
                        loose = Removal(bound.removal(g, edges), 0.0, 0.0)
                        if bound.skips(g, w, loose, edges, current, IMPROVEMENT):
                            bound.skipped += 1
                            continue
                to = state.worker_node[w] if board < 0 else board
                if skip and removal is None and to != mine:
                    value, (lat, exc) = state.price_executor_move_at(g, w, board, mine)
                    removal = Removal(state.node_lat[mine] - lat, state.node_exc[mine], exc)
                else:
                    value = state.price_executor_move(g, w, board)
                if _better(value, best):
                    best, best_w = value, w
            if best_w >= 0:
                state.refreshed.clear()
                if state.worker_node[best_w] < 0:
                    state.move_worker(best_w, least_busy_board(state, free))
                moved.update((state.exec_worker[g], best_w))
                boards.update((state.worker_node[state.exec_worker[g]], state.worker_node[best_w]))
                shifted.add(g)
                vacate(state, g, best_w)
                bound.forget(state.refreshed)  # the boards the move re-priced
                spare = spare_worker(state, free)
                current = best
                changed = True
        slots = free_slots(state, free)  # taken again after a worker move
        room = any(s > 0 for s in slots)
        for w in workers:
            if not room or not state.w_count[w]:
                continue
            best, best_n = current, -1
            for n in board_candidates(state, w, slots):
                value = state.price_worker_move(w, n)
                if _better(value, best):
                    best, best_n = value, n
            if best_n >= 0:
                state.refreshed.clear()
                moved.add(w)
                boards.update((state.worker_node[w], best_n))
                shifted.update(state.members[w])
                state.move_worker(w, best_n)
                bound.forget(state.refreshed)
                slots = free_slots(state, free)
                room = any(s > 0 for s in slots)
                current = best
                changed = True
        if not changed:
            return bound
        executors, workers = _near(state, moved, boards, shifted)
    return bound


def _near(state: State, moved: set[int], boards: set[int], shifted: set[int]) -> tuple[list[int], list[int]]:
    """(executors, workers), each ascending, whose moves the next pass prices again after
    the executors ``shifted`` moved and the workers ``moved`` changed on ``boards``: every
    worker on one of those boards (its board's load and queueing changed), every executor
    in one of them, and every executor with an edge to a shifted one (its hops' costs
    changed)."""
    workers = set(moved)
    for n in boards:
        if n >= 0:
            workers.update(state.on_node[n])
    executors: set[int] = set()
    net = state.net
    for w in workers:
        executors.update(state.members[w])
    for g in shifted:
        executors.add(g)
        for k in net.adjacent[g]:
            s, d = net.edges[k][0], net.edges[k][1]
            executors.add(d if s == g else s)
    return sorted(executors), sorted(workers)
