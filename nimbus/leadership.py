"""Which term this Nimbus leads, and what it says about itself: the Nimbus side of fencing.

Boards order assignments by (term, version) and refuse an older term (see
``squall.supervisor.state``). Here is how a single Nimbus (no replicas yet) picks its term:

* every start is a new term: ``term = stored epoch + 1``, saved in the store's ``meta`` table
  before Nimbus serves, so a restarted Nimbus outranks the run before it even when its
  per-board numbering is behind (a rolled-back data dir);
* a board reports the highest term it accepted (``RegisterSupervisor.term``,
  ``Heartbeat.term``). A report above this Nimbus's term — its data dir is new or was
  rolled back, or another Nimbus led meanwhile — raises the term to ``report + 1``, saved
  before anything else is sent; the caller then pushes every board its assignment again, so
  all boards follow the new term. Never silently ignored: that is the point;
* so is a registration reporting this very term from a board that never registered with
  this process: another Nimbus issued that term (two fresh data dirs both start at 1), so
  the numbers of the two cannot be compared.

Guarantees: the term never decreases, is saved before it is used, is strictly above every
term a board reported to this process, and no board holds an assignment of this term from
another Nimbus once it has registered here. With replicas (later), the term will come from the
consensus library, and a replica that hears of a higher term steps down instead of raising.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol

from squall.nimbus.commands import Command, SaveEpoch

log = logging.getLogger("squall.nimbus")


class EpochStore(Protocol):
    def load_epoch(self) -> int: ...

    def save_epoch(self, epoch: int) -> None: ...


class Leadership:
    """The term of a standalone Nimbus (see the module docstring). ``address`` ("host:port")
    and ``pid`` are what ``GetNimbusStatus`` reports; the CLI sets the advertised address."""

    def __init__(self, store: EpochStore, address: str = "", pid: int | None = None) -> None:
        self.store = store
        self.address = address
        self.pid = os.getpid() if pid is None else pid
        self.term = store.load_epoch() + 1
        store.save_epoch(self.term)  # first: a term is never used before it is saved
        self.raised = 0  # how often a board's report raised the term
        self._registered: set[str] = set()  # boards that registered with this process
        self._unsaved: list[Command] = []  # a raised term's write, until the state takes it

    def observe(self, reported: int, registering: str | None = None) -> bool:
        """A board reports the highest term it accepted (``registering``: its id, when the
        report comes with its registration); True when that raised this term (the caller
        must push every board's assignment again)."""
        stranger = registering is not None and registering not in self._registered
        if registering is not None:
            self._registered.add(registering)
        if reported < self.term or (reported == self.term and not stranger):
            return False
        term = reported + 1
        self._unsaved.append(SaveEpoch(term))  # carried out with the event, before its sends
        log.warning(
            "a board follows term %d, above this Nimbus's %d (a new or rolled-back data dir, or another "
            "Nimbus led meanwhile): now term %d, every board gets its assignment again",
            reported,
            self.term,
            term,
        )
        self.term, self.raised = term, self.raised + 1
        return True

    def writes(self) -> list[Command]:
        """The store writes a raised term needs (taken once): the state adds them to the
        event's commands, which the store carries out before any send."""
        out, self._unsaved = self._unsaved, []
        return out

    def status(self) -> dict[str, Any]:
        """``squall nimbus-status --json``: a single Nimbus leads itself."""
        return {
            "leader": self.address,
            "term": self.term,
            "replicas": [{"address": self.address, "role": "leader", "pid": self.pid}],
        }
