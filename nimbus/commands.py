"""What Nimbus's decisions ask the outside world to do: typed commands, carried out in order.

The state machine (:mod:`squall.nimbus.state`) never writes the store nor touches a socket:
each event returns a list of these values. :class:`Send` goes to a control-plane peer; the
:class:`Write` commands are the durable record of the decision; :class:`Read` commands
answer a request with data only the store holds (bundles, the event log).

Guarantees:

* every command is a value taken when the decision was made (a copy, not a reference to a
  record the state goes on mutating), so carrying out a list later, or on another machine,
  writes what was decided then;
* :func:`squall.nimbus.store.Store.carry_out` applies one event's writes in one transaction
  before any of its sends leaves, so a failed write sends nothing and changes nothing on disk.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from squall.nimbus.records import SupervisorRecord, TopologyRecord


@dataclass(frozen=True)
class Send:
    """Send ``msg`` to the control-plane peer ``peer`` (a ROUTER identity)."""

    peer: bytes
    msg: Any


class Write:
    """A change to the durable store (one of the dataclasses below)."""


@dataclass(frozen=True)
class SaveTopology(Write):
    """Upsert a topology and replace its placement."""

    record: TopologyRecord

    @classmethod
    def of(cls, rec: TopologyRecord) -> SaveTopology:
        # Copy the mutable parts: the record goes on changing after the decision. A
        # Placement is immutable: shared, not copied.
        return cls(replace(rec, conf=copy.deepcopy(rec.conf), pending=copy.deepcopy(rec.pending)))


@dataclass(frozen=True)
class DeleteTopology(Write):
    """The topology, its placement, migration, events and loop clock."""

    name: str


@dataclass(frozen=True)
class SaveSupervisor(Write):
    """Upsert a supervisor's stored fields (identity, resources, assignment version)."""

    record: SupervisorRecord

    @classmethod
    def of(cls, sup: SupervisorRecord) -> SaveSupervisor:
        return cls(
            SupervisorRecord(
                sup.id,
                sup.host,
                list(sup.ports),
                sup.capacity_hz,
                sup.clock_hz,
                sup.cores,
                sup.memory_mb,
                version=sup.version,
                last_seen=sup.last_seen,
            )
        )


@dataclass(frozen=True)
class DeleteSupervisor(Write):
    supervisor_id: str


@dataclass(frozen=True)
class PutBundle(Write):
    """Store a code bundle under its sha256 ``digest`` (computed by the decision)."""

    digest: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class DropBundle(Write):
    """Delete a bundle unless a stored topology still uses it (checked after the commit)."""

    digest: str


@dataclass(frozen=True)
class SaveMigration(Write):
    topology: str
    record: dict[str, Any]
    states: dict[int, bytes] = field(repr=False)


@dataclass(frozen=True)
class DeleteMigration(Write):
    topology: str


@dataclass(frozen=True)
class SaveEpoch(Write):
    """The term a standalone Nimbus now leads (fencing, ``nimbus.leadership``): carried out
    with the event's other writes, before any send of that term."""

    epoch: int


@dataclass(frozen=True)
class SaveClock(Write):
    """When the topology's placement last changed (the loop's timeout restarts from it)."""

    topology: str
    last_change: float


@dataclass(frozen=True)
class AddEvent(Write):
    """A rebalance event, under the id the state machine gave it."""

    event_id: int
    topology: str
    event: dict[str, Any]


@dataclass(frozen=True)
class UpdateEvent(Write):
    """Merge ``changes`` into a stored event (nothing when it was trimmed or deleted)."""

    event_id: int
    changes: dict[str, Any]


@dataclass(frozen=True)
class SaveLogPosition(Write):
    """A Nimbus replica's count of replicated-log entries carried out into this store, saved
    with each entry's writes (``nimbus.replication``): a restarted replica skips what its
    store already holds."""

    applied: int


class Read:
    """A reply whose data only the store holds; carried out after the event's writes."""


@dataclass(frozen=True)
class ReplyBundle(Read):
    """Reply ``view`` with ``view["bundle"]`` set to the bundle, or an error naming it when missing."""

    peer: bytes
    rid: int
    topology: str
    digest: str
    view: dict[str, Any]


@dataclass(frozen=True)
class ReplyEvents(Read):
    """Reply with the topology's stored events, oldest first."""

    peer: bytes
    rid: int
    topology: str


Command = Send | Write | Read
