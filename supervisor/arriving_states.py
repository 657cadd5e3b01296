"""The snapshots of executors that migrate onto this board, fetched from Nimbus once each.

During a live migration's ACQUIRE, Nimbus's assignment names each arriving executor's
snapshot by reference (``WorkerAssignment.state_refs``: digest and size), not by its bytes;
the supervisor fetches the bytes with ``GetSnapshot`` (docs/nimbus.md, "snapshots go down
once"). :class:`ArrivingStates` is that part of the supervisor's state machine: no sockets,
no clock (time is passed in); its methods return the fetches to send.

Guarantees:

* each reference is fetched once while assignments name it: the bytes are kept (checked
  against the digest) for as long as the current assignment names them, so a re-pushed,
  resent or re-registered assignment fetches nothing; they are dropped when no assignment
  names them any more (the migration resumed);
* at most one fetch is in flight: the next is asked for when the last one's reply came (or
  it failed), so Nimbus's queue to this board holds at most one snapshot and heartbeat acks
  pass between two; a fetch unanswered for ``RETRY_S`` plus the snapshot's transfer time at
  ``SLOW_LINK_BYTES_S`` is asked again (a lost frame), and one whose request could not be
  sent, or went to a Nimbus the board has left, at the next tick;
* :meth:`resolve` gives an assignment's states only once every snapshot it names is here or
  known to be unavailable (Nimbus refused the fetch, or the bytes did not match their
  digest: that executor starts without state, logged once), so a worker is never handed an
  arriving executor while its state is still on the way.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from squall.messages import WorkerAssignment

log = logging.getLogger("squall.supervisor")

RETRY_S = 10.0  # as a code fetch: an unanswered fetch is asked again after this much ...
SLOW_LINK_BYTES_S = 125_000.0  # ... plus the snapshot's transfer at 1 Mbit/s, not to double a slow one

Key = tuple[str, int, str]  # (topology, executor, digest)


@dataclass(frozen=True)
class FetchSnapshot:
    """Ask Nimbus for one snapshot (``GetSnapshot``); the reply goes to ``on_reply``."""

    topology: str
    executor: int
    digest: str

    @property
    def key(self) -> Key:
        return (self.topology, self.executor, self.digest)


def refs_of(assignments: Iterable[WorkerAssignment]) -> dict[Key, int]:
    """Every snapshot ``assignments`` name, with its size."""
    return {(a.topology, ex, ref.digest): ref.size for a in assignments for ex, ref in a.state_refs.items()}


@dataclass
class ArrivingStates:
    """See the module docstring."""

    held: dict[Key, bytes] = field(default_factory=dict)
    unavailable: dict[Key, str] = field(default_factory=dict)  # key -> why: moves without state
    wanted: dict[Key, int] = field(default_factory=dict)  # named and not here yet, in order -> size
    in_flight: Key | None = None
    sent_at: float | None = None  # when the fetch in flight was sent; None: to send at the next tick
    fetches: int = 0  # fetches sent, retries included
    bytes_fetched: int = 0

    def want(self, named: dict[Key, int], now: float) -> list[FetchSnapshot]:
        """The current assignment names ``named`` (key -> size): fetch what is not here yet,
        forget what it no longer names."""
        for key in [k for k in self.held if k not in named]:
            del self.held[key]
        for key in [k for k in self.unavailable if k not in named]:
            del self.unavailable[key]
        self.wanted = {k: size for k, size in sorted(named.items()) if k not in self.held and k not in self.unavailable}
        if self.in_flight is not None and self.in_flight not in self.wanted:
            self.in_flight, self.sent_at = None, None  # a late reply is ignored
        return self._next(now)

    def missing(self, a: WorkerAssignment) -> bool:
        """Some snapshot ``a`` names is neither here nor known to be unavailable."""
        return any(
            (a.topology, ex, ref.digest) not in self.held and (a.topology, ex, ref.digest) not in self.unavailable
            for ex, ref in a.state_refs.items()
        )

    def resolve(self, a: WorkerAssignment) -> WorkerAssignment | None:
        """``a`` as its worker gets it: the named snapshots' bytes in ``states`` (beside any
        an older Nimbus sent inline), no references; None while one is still on the way."""
        if not a.state_refs:
            return a
        if self.missing(a):
            return None
        fetched = {
            ex: self.held[(a.topology, ex, ref.digest)]
            for ex, ref in a.state_refs.items()
            if (a.topology, ex, ref.digest) in self.held
        }
        return replace(a, states={**a.states, **fetched}, state_refs={})

    def arrived(self, key: Key, data: bytes, now: float) -> list[FetchSnapshot]:
        """Nimbus answered the fetch of ``key`` with ``data``."""
        if key == self.in_flight:
            self.in_flight, self.sent_at = None, None
        if key in self.wanted:
            del self.wanted[key]
            if hashlib.sha256(data).hexdigest() == key[2]:
                self.held[key] = data
                self.bytes_fetched += len(data)
            else:
                self._unavailable(key, f"{len(data)} bytes that do not match the digest")
        return self._next(now)

    def refused(self, key: Key, error: str, now: float) -> list[FetchSnapshot]:
        """Nimbus answered the fetch of ``key`` with an error: that executor starts empty."""
        if key == self.in_flight:
            self.in_flight, self.sent_at = None, None
        if key in self.wanted:
            del self.wanted[key]
            self._unavailable(key, error)
        return self._next(now)

    def unsent(self, key: Key) -> None:
        """The request for ``key`` could not be sent, or went to a Nimbus this board left:
        send it again at the next tick."""
        if key == self.in_flight:
            self.sent_at = None

    def tick(self, now: float) -> list[FetchSnapshot]:
        """The fetch in flight, again, when it is due (see the module docstring)."""
        if self.in_flight is None:
            return self._next(now)
        size = self.wanted.get(self.in_flight, 0)
        if self.sent_at is None or now - self.sent_at >= RETRY_S + size / SLOW_LINK_BYTES_S:
            if self.sent_at is not None:
                log.info("snapshot of executor %d (%d bytes): no answer; asking again", self.in_flight[1], size)
            return self._send(self.in_flight, now)
        return []

    def _next(self, now: float) -> list[FetchSnapshot]:
        if self.in_flight is not None or not self.wanted:
            return []
        return self._send(next(iter(self.wanted)), now)

    def _send(self, key: Key, now: float) -> list[FetchSnapshot]:
        self.in_flight, self.sent_at = key, now
        self.fetches += 1
        return [FetchSnapshot(*key)]

    def _unavailable(self, key: Key, why: str) -> None:
        self.unavailable[key] = why
        log.warning("no snapshot for executor %d of topology %s (%s); it starts without its state", key[1], key[0], why)
