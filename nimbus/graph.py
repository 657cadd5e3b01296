"""The component graph on Nimbus: the cycles a topology has, named for the user.

Storm allows cycles (a bolt may feed one of its own inputs), so a cycle is no reason to
refuse a topology; but a tuple can then circulate without end, and a tree anchored around
it never completes, so Nimbus warns at submit (the reply, the CLI's output, Nimbus's log)
and the web page shows them. networkx enumerates the elementary cycles (Johnson's
algorithm), which is what a hand-written check would get wrong or leave out; workers never
import this module (it is Nimbus's alone).

Guarantees: at most ``MAX_CYCLES`` cycles, each listed once, starting at its smallest
component name, in sorted order; a self-subscription is a cycle of one; deterministic.
"""

from __future__ import annotations

import itertools

import networkx as nx

from squall.topology.spec import TopologySpec

# Cycles enumerated before sorting: a dense graph has exponentially many, and the first
# few already tell the user where to look.
MAX_CYCLES = 10


def cycles(spec: TopologySpec) -> list[list[str]]:
    """The topology's cycles (see the module's guarantees)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(sorted(c.name for c in spec.components))
    graph.add_edges_from(spec.component_edges())
    found = itertools.islice(nx.simple_cycles(graph), MAX_CYCLES)
    return sorted(_from_smallest(c) for c in found)


def cycle_warnings(spec: TopologySpec) -> list[str]:
    """One sentence per cycle of ``spec`` (none when it has none)."""
    return [
        f"topology {spec.name!r} has a cycle {' -> '.join([*cycle, cycle[0]])}: Storm allows it, but a tuple "
        "can circulate on it without end, and a tree anchored around it never completes"
        for cycle in cycles(spec)
    ]


def _from_smallest(cycle: list[str]) -> list[str]:
    k = cycle.index(min(cycle))
    return cycle[k:] + cycle[:k]
