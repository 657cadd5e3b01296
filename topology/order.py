"""The topological order of a topology's components: one rule for the engine, the offline
scheduler and the web page.

The rule (deterministic; Storm allows cycles, so every graph has an order):

* the components of a cycle form one group (a strongly connected component); a component
  off every cycle is a group of its own; a component subscribing to itself is no cycle here;
* layer 0 holds the groups with no input from another group; layer k the groups whose
  inputs from other groups all sit in layers below k (so a component's layer is the longest
  path to it from a source group, as ``networkx.topological_generations`` counts on a
  graph without cycles);
* each layer lists its components by name; the order is the layers read first to last.

So for edges {a -> c} and a second spout d the order is [a, d, c] (layers [a, d], [c]); the
members of a cycle share one layer, placed after every group feeding it.

Pure Python on purpose: workers import ``squall.topology``, and a worker never imports
networkx (Nimbus uses it to name the cycles, :mod:`squall.nimbus.graph`). The cost is
quadratic in the number of components, which is tens in practice.
"""

from __future__ import annotations

from collections.abc import Iterable

Edge = tuple[str, str]  # (source component, consuming component)


def topological_layers(components: Iterable[str], edges: Iterable[Edge]) -> list[list[str]]:
    """Components by layer, following the module's rule. Edges naming a component not in
    ``components`` are ignored, and so are self-edges."""
    names = sorted(set(components))
    succ = _successors(names, edges)
    group = _groups(names, succ)
    members: dict[str, list[str]] = {}
    for n in names:
        members.setdefault(group[n], []).append(n)
    inputs: dict[str, set[str]] = {g: set() for g in members}
    for s in names:
        for d in succ[s]:
            if group[s] != group[d]:
                inputs[group[d]].add(group[s])
    layers: list[list[str]] = []
    placed: set[str] = set()
    left = set(members)
    while left:
        # Never empty: the groups form a graph without cycles.
        ready = {g for g in left if inputs[g] <= placed}
        layers.append(sorted(n for g in ready for n in members[g]))
        placed |= ready
        left -= ready
    return layers


def topological_order(components: Iterable[str], edges: Iterable[Edge]) -> list[str]:
    """Every component once, sources first, following the module's rule."""
    return [name for layer in topological_layers(components, edges) for name in layer]


def _successors(names: list[str], edges: Iterable[Edge]) -> dict[str, set[str]]:
    succ: dict[str, set[str]] = {n: set() for n in names}
    for s, d in edges:
        if s in succ and d in succ and s != d:
            succ[s].add(d)
    return succ


def _groups(names: list[str], succ: dict[str, set[str]]) -> dict[str, str]:
    """Each component's group, named by its smallest member: the components it reaches and
    that reach it (its strongly connected component)."""
    reach = {n: _reachable(n, succ) for n in names}
    return {n: min(m for m in reach[n] if n in reach[m]) for n in names}


def _reachable(start: str, succ: dict[str, set[str]]) -> set[str]:
    """``start`` and every component a path from it reaches."""
    seen = {start}
    todo = [start]
    while todo:
        for d in succ[todo.pop()]:
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen
