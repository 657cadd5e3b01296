"""Worker ids chosen so that a rebalance moves as few executors as the placement allows.

Worker ids are labels: renaming the workers of a proposal changes neither which executors
share a worker nor which node a worker runs on, so it changes no cost. It does change what
a rebalance moves: an executor stays put only if its new worker has the id of its current
worker *and* runs on that worker's node (:meth:`Assignment.moved`). :func:`keep_worker_ids`
picks, per topology, the renaming that keeps the most executors put: a maximum-weight
matching (networkx's blossom algorithm) between proposed and current workers, weighted by
the executors a proposed worker would keep from a current one on the same node. A greedy
pairing of the largest overlaps first can keep fewer (a pair it takes may block two others).

Guarantees: the result equals ``proposal`` up to worker ids; ``current.moved(result)`` is
never longer than ``current.moved(proposal)`` (the proposal's own ids are one of the
renamings considered); topologies absent from ``current`` are returned as they are; pure
and deterministic.
"""

from __future__ import annotations

from squall.rebalance.assignment import Assignment, ExecutorKey, WorkerKey


def keep_worker_ids(current: Assignment, proposal: Assignment) -> Assignment:
    """``proposal`` with its workers renamed to move the fewest executors from ``current``."""
    renamed: dict[WorkerKey, int] = {}
    for t in proposal.topologies():
        renamed.update(_renaming(t, current, proposal))
    if all(renamed.get((t, w), w) == w for t, w, _ in proposal.workers):
        return proposal
    executor_worker: dict[ExecutorKey, int] = {(t, e): renamed.get((t, w), w) for t, e, w in proposal.executors}
    worker_node: dict[WorkerKey, str] = {(t, renamed.get((t, w), w)): n for t, w, n in proposal.workers}
    return Assignment.of(executor_worker, worker_node)


def _renaming(topology: str, current: Assignment, proposal: Assignment) -> dict[WorkerKey, int]:
    """{(topology, proposed worker id): new id} for the topology's workers."""
    mine = proposal.workers_of(topology)
    # Only a current worker on the proposed worker's node can keep its executors: pair each
    # proposed worker with those alone (in the current ids' order, as a scan of every pair
    # would list them), not with every current worker (a million pairs at 1,000 workers).
    theirs_on: dict[str, list[int]] = {}
    for old in current.workers_of(topology):
        theirs_on.setdefault(current.node_of_worker(topology, old), []).append(old)
    kept = []
    for w in mine:
        olds = theirs_on.get(proposal.node_of_worker(topology, w))
        if olds:
            executors = set(proposal.executors_on(topology, w))
            for old in olds:
                if n := len(executors.intersection(current.executors_on(topology, old))):
                    kept.append((w, old, n))
    match = _best_match(kept, len(mine))
    # A worker matched to none keeps its proposed id unless a matched worker took it; then
    # it takes the smallest id nobody holds (in the order of the proposed ids).
    new_id = dict(match)
    for w in mine:
        if w not in new_id and w not in match.values():
            new_id[w] = w
    used = set(new_id.values())
    fresh = (x for x in range(len(mine) + len(used) + 1) if x not in used)
    for w in mine:
        if w not in new_id:
            new_id[w] = next(fresh)
    return {(topology, w): new_id[w] for w in mine}


def _best_match(kept: list[tuple[int, int, int]], n_workers: int) -> dict[int, int]:
    """{proposed worker: current worker} maximising the executors kept, from (proposed,
    current, executors kept) rows. Ties: the most workers keeping their proposed id, then
    networkx's choice on a graph built in id order (deterministic)."""
    if not kept:
        return {}
    # Imported here: networkx takes a noticeable time to import, and a schedule without a
    # current assignment has nothing to match.
    import networkx as nx

    # Integer weights (exact in the blossom algorithm); the tie-break bonus of all workers
    # together is less than one kept executor, so it never outweighs keeping one.
    scale = n_workers + 1
    graph = nx.Graph()
    for w, old, n in kept:
        graph.add_edge(("proposed", w), ("current", old), weight=n * scale + (1 if w == old else 0))
    out: dict[int, int] = {}
    for a, b in nx.max_weight_matching(graph):
        current, proposed = sorted((a, b))  # ("current", _) sorts before ("proposed", _)
        out[proposed[1]] = current[1]
    return out
