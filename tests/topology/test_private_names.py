"""A component may define helpers with any private name: the framework's per-task emit is
bound under ``_squall_emit``, so a user's own ``_emit`` (the ledger chain has one) is theirs."""

from __future__ import annotations

from squall import Bolt, Spout, Topology
from squall.topology.testing import CollectBolt, run_local


class OwnEmit(Spout):
    outputs = ["n"]

    def initialize(self, conf, ctx):
        self.n = 0

    def next_tuple(self):
        if self.n < 5:
            self.n += 1
            self._emit(self.n)

    def _emit(self, n):  # a user helper with the name the framework once used
        self.emit([n], n)


class Relay(Bolt):
    outputs = ["n"]

    def process(self, tup):
        self._emit(tup)

    def _emit(self, tup):
        self.emit([tup["n"]])


class T(Topology):
    src = OwnEmit.spec()
    relay = Relay.spec(inputs=[src])
    sink = CollectBolt.spec(inputs=[relay])


def test_a_component_s_own_underscore_emit_is_left_alone():
    result = run_local(T, seconds=1.0)
    assert sorted(v[0] for v in result.collected("sink")) == [1, 2, 3, 4, 5]
