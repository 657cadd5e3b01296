"""Nimbus replicas: one of 2f+1 Nimbus processes that agree, through Raft, on every store write.

``squall nimbus --peers A,B,C`` runs a :class:`Replica`. Consensus is pysyncobj's (a Raft
implementation on PyPI; never written by hand here); this module decides what goes into its
log and what a replica does with it:

* **The leader's core decides.** Only the Raft leader runs a :class:`NimbusState`. An event's
  store writes (:mod:`squall.nimbus.commands`) are appended to the Raft log as one entry; the
  event's sends and store reads are held back until that entry is committed and carried out
  on this replica's store. Nothing is sent that a majority has not stored. A decision without
  writes (a heartbeat's ack, a query) goes out at once, unless an entry is still in flight:
  then it waits behind it, so replies never overtake the writes they may depend on.
* **Every replica carries out the committed entries** on its own SQLite store, in log order,
  each entry in one transaction with the count of entries applied (``SaveLogPosition``): a
  restarted replica, whose Raft journal replays from the start, skips what its store holds.
  Code bundles travel in the log (``PutBundle`` is a write), so followers hold them too.
* **Becoming leader** = appending a marker entry with this replica's Raft term; when it is
  carried out, every earlier entry is in the store, and the state is loaded from the store
  exactly as a restarted Nimbus loads it (boards re-adopted from their registrations and
  heartbeats, unfinished migrations resumed). The fencing term of its assignments is that
  Raft term plus the group's offset (raised through the log when a board followed a higher
  term elsewhere): strictly above every earlier leader's.
* **Losing leadership** (Raft says follower: a higher term was seen, or no majority answered
  for ``LEADER_FALLBACK_S``) drops the state and every decision still in flight: their sends
  never leave. Decisions of a deposed leader that a majority never stored never reach a board.
* **While the new leader loads** (its marker not yet carried out), messages are held and
  decided once it leads: a client that followed a redirect to it waits a moment, not fails.
* **Followers** answer requests with ``NotLeader`` naming the leader (a client follows it), a
  board's registration or heartbeat with ``RegisterReply(ok=False, leader=...)`` (the board
  moves there), nothing while no leader is known (the board's silence timer moves it on),
  and ``GetNimbusStatus`` themselves only while no leader is known (else the leader's view).

pysyncobj runs its own thread; it only puts what it commits (and role changes) on a queue
and wakes the server's loop, which does everything else (:meth:`Replica.pump`): one thread
touches the state and the store. Single-replica mode never imports this module's library.

Not done: log compaction (pysyncobj's snapshots would hold no store), so the Raft log and its
journal grow with every write (registrations, pushes, migrations, events; heartbeats write
nothing); a replica's store write that fails is logged and counted, not repaired.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squall import messages as M
from squall.nimbus.commands import Command, SaveLogPosition, Send, Write
from squall.nimbus.events import Event, Received
from squall.nimbus.leadership import Leadership
from squall.nimbus.state import NimbusState
from squall.nimbus.store import Store, StoreError

log = logging.getLogger("squall.nimbus.replication")

RAFT_PORT_OFFSET = 1  # a replica's Raft port is its control port + 1
JOURNAL_NAME = "raft.journal"
ELECTION_MIN_S = 0.4  # a follower that hears no leader for a random time in [min, max] runs for election
ELECTION_MAX_S = 1.4
HEARTBEAT_S = 0.1  # the leader's append-entries period (pysyncobj's default)
LEADER_FALLBACK_S = 1.5  # a leader without answers from a majority for this long steps down
RETRY_ANNOUNCE_S = 2.0
HELD_MAX = 1000  # messages held while a new leader loads its state

# Roles as nimbus-status names them, from pysyncobj's states (0 follower, 1 candidate, 2 leader).
ROLES = {0: "follower", 1: "candidate", 2: "leader"}


class PeersError(ValueError):
    """``--peers`` is not a list of 2f+1 distinct HOST:PORT addresses including this replica."""


def parse_peers(text: str, own: str) -> list[str]:
    """The replicas' control addresses from ``--peers A,B,C``, checked: HOST:PORT each, no
    duplicates, an odd count of at least 3, ``own`` ("host:port") among them."""
    peers: list[str] = []
    for item in (p.strip() for p in text.split(",")):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65535:
            raise PeersError(f"--peers: each replica must be HOST:PORT (its control port), got {item!r}")
        if item in peers:
            raise PeersError(f"--peers: {item} is listed twice")
        peers.append(item)
    if len(peers) < 3 or len(peers) % 2 == 0:
        raise PeersError(
            f"--peers: {len(peers)} replica(s); Raft needs an odd number of at least 3 (2f+1 survive f failures; "
            "one more replica than that only adds a vote to split). For a single Nimbus, leave --peers out"
        )
    if own not in peers:
        raise PeersError(f"--peers must list this replica's own address {own} (--host and --port), got {text!r}")
    return peers


def raft_address(control: str) -> str:
    """The Raft address of the replica whose control-plane address is ``control``."""
    host, _, port = control.rpartition(":")
    return f"{host}:{int(port) + RAFT_PORT_OFFSET}"


class ReplicaLeadership(Leadership):
    """The fencing term of a leading replica: its Raft term plus the group's offset (0 unless
    a board was ahead, see :meth:`observe`). Strictly increasing across leaders: a later
    leader has a higher Raft term, and an offset at least as high (it is in the log before
    that leader's marker)."""

    def __init__(self, replica: Replica, term: int) -> None:  # no epoch in the store: the log's
        self.replica = replica
        self.address = replica.address
        self.pid = os.getpid()
        self.term = term
        self.raised = 0
        self.boards_ahead = 0
        self._asked = 0  # the highest report an offset was asked for
        self._push_due = False  # the term rose: push every board at the next report

    def writes(self) -> list[Command]:
        """None: a replica's term rises through the log (:meth:`observe`), not the store."""
        return []

    def observe(self, reported: int, registering: str | None = None) -> bool:
        """A board reports the highest term it accepted. Above this leader's term (it
        followed a standalone Nimbus of another run, or another group's), the group's offset
        is raised through the log so the term passes it; once that is committed, the next
        report returns True and every board gets its assignment again with the new term."""
        if reported > self.term and reported > self._asked:
            self._asked = reported
            self.boards_ahead += 1
            log.warning(
                "a board follows term %d, above this leader's %d: raising the group's term past it",
                reported,
                self.term,
            )
            self.replica.raise_term_past(reported)
        if self._push_due:
            self._push_due = False
            return True
        return False

    def raised_to(self, term: int) -> None:
        """The log committed a higher offset: this leader's term is now ``term``."""
        self.term, self.raised, self._push_due = term, self.raised + 1, True

    def status(self) -> dict[str, Any]:
        return self.replica.status()


class Replica:
    """One Nimbus replica (see the module docstring). The server's loop calls :meth:`pump`
    whenever ``wake`` fired (and on every pass), :meth:`decide` for events while
    :attr:`leading`, and :meth:`refusal` for messages while not."""

    def __init__(
        self,
        store: Store,
        conf: dict[str, Any],
        address: str,
        peers: list[str],
        data_dir: Path | None,
        http_url: str = "",
        password: str | None = None,
        wake: Callable[[], None] = lambda: None,
        make_log: Callable[..., Any] | None = None,
    ) -> None:
        """``make_log(self_node, others, conf, on_committed)`` builds the Raft log (pysyncobj's;
        tests pass a fake that commits when told)."""
        from pysyncobj import SyncObjConf  # only replicas import the library (and start its thread)

        self.store, self.conf, self.address, self.peers = store, conf, address, list(peers)
        self.http_url = http_url
        self.state: NimbusState | None = None  # only while leading
        self.term = 0  # the fencing term while leading: its Raft term + the group's offset
        self._raft_term = 0  # the Raft term this replica leads in (its entries are stamped with it)
        self._offset = 0  # added to Raft terms so the fencing term passes what boards followed
        self.wake = wake
        self.counters: dict[str, int] = {
            "entries_applied": 0,
            "store_errors": 0,
            "stepped_down": 0,
            "leads": 0,
            "stale_entries": 0,
        }
        self.replicas: dict[str, dict[str, Any]] = {}  # control address -> {"pid", "http"} as announced
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._pending: OrderedDict[int, list[list[Command]]] = OrderedDict()  # entry seq -> held decisions
        self._seq = 0
        self._applied = 0  # entries carried out (or skipped as already stored) since start
        self._position = store.load_log_position()
        self._log_leader: tuple[str, int] = ("", 0)  # the latest leader marker in log order
        self._want_term = 0  # the term of the marker this replica appended, waiting for it
        self._announced = False
        self._announce_due = 0.0
        self._held: list[Received] = []
        journal = None
        if data_dir is not None:
            journal = data_dir / JOURNAL_NAME
            if self._position > 0 and not journal.exists():
                raise StoreError(
                    f"{store.path} holds {self._position} replicated entries but the Raft journal {journal} is "
                    "missing, so this replica cannot tell which of the log's entries it holds: move the data "
                    "directory aside and start on an empty one (it catches up from the leader)"
                )
        raft_conf = SyncObjConf(
            journalFile=str(journal) if journal is not None else None,
            raftMinTimeout=ELECTION_MIN_S,
            raftMaxTimeout=ELECTION_MAX_S,
            appendEntriesPeriod=HEARTBEAT_S,
            leaderFallbackTimeout=LEADER_FALLBACK_S,
            connectionTimeout=3.5,
            # A restarted peer is reconnected within 0.1 s: before its election timer runs out,
            # so it hears the leader before it calls an election (pysyncobj has no pre-vote).
            connectionRetryTime=0.1,
            logCompactionMinEntries=2**62,  # never: a pysyncobj snapshot would not hold the store
            logCompactionMinTime=2**62,
            useFork=False,  # never fork a process with ZeroMQ threads
            onStateChanged=self._on_state_changed,
            password=password,
        )
        others = [raft_address(p) for p in self.peers if p != address]
        self._raft = (make_log or _make_log)(raft_address(address), others, raft_conf, self._on_committed)

    # -- pysyncobj's thread: only queue and wake ----------------------------------------------

    def _on_committed(self, entry: tuple[Any, ...]) -> None:
        self._queue.put(("entry", entry))
        self.wake()

    def _on_state_changed(self, old: int, new: int) -> None:
        raft = getattr(self, "_raft", None)  # an election may finish before the constructor returns
        term = raft._getTerm() if raft is not None and new == 2 else 0
        self._queue.put(("role", new, term))
        self.wake()

    def _on_result(self, seq: int, result: Any, error: int) -> None:
        if error != 0:  # FAIL_REASON.SUCCESS
            self._queue.put(("lost", seq, error))
            self.wake()

    # -- the loop's thread ------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        """True while this replica leads and its state is loaded: it decides."""
        return self.state is not None

    def pump(self, now: float) -> list[Send]:
        """Carry out what Raft committed and react to role changes; the sends now due."""
        out: list[Send] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item[0] == "entry":
                out.extend(self._carry_out(item[1]))
            elif item[0] == "role":
                if item[1] == 2 and item[2] == 0:  # elected during the constructor: read the term now
                    item = ("role", 2, self._raft._getTerm())
                if item[1] == 2:
                    self._mark(item[2])  # the state is loaded when the marker is carried out
                else:
                    self._step_down(f"Raft made this replica a {ROLES.get(item[1], item[1])}")
            elif item[0] == "lost" and (item[1] in self._pending or (item[1] == 0 and self.loading)):
                # Raft did not commit an entry of ours (its queue was full, or leadership moved):
                # what memory decided after it may be wrong, so the state is loaded afresh.
                self._reload(f"an entry was not committed (pysyncobj reason {item[2]})")
        if self._want_term and not self._raft._isLeader():
            self._step_down("Raft no longer names this replica leader")
        if self.state is not None and self._held:
            held, self._held = self._held, []
            for event in held:
                out.extend(self.decide(event))
        if not self._announced and now >= self._announce_due and self._raft._getLeader() is not None:
            self._announce_due = now + RETRY_ANNOUNCE_S
            self._raft.append(("replica", self.address, self.http_url, os.getpid()))
        return out

    @property
    def loading(self) -> bool:
        """Raft elected this replica and its marker is on its way: it will lead in a moment."""
        return self.state is None and self._want_term > 0 and bool(self._raft._isLeader())

    def _mark(self, term: int) -> None:
        """Append the marker whose carrying out loads the state (every earlier entry is in the
        store by then); messages meanwhile are held (:meth:`hold`)."""
        self._want_term = term
        self._raft.append(
            ("leader", self.address, term), callback=lambda result, error: self._on_result(0, result, error)
        )

    def _reload(self, why: str) -> None:
        """Drop the state and what is in flight, and load it afresh from the store through a
        new marker (while Raft still names this replica leader; else step down)."""
        self._step_down(why)
        if self._raft._isLeader():
            self._mark(int(self._raft._getTerm()))

    def hold(self, event: Event) -> None:
        """A message that arrived while :attr:`loading`: decided once the state is loaded
        (at most ``HELD_MAX``, the oldest dropped first; ticks are not held)."""
        if isinstance(event, Received):
            self._held.append(event)
            del self._held[:-HELD_MAX]

    def decide(self, event: Event) -> list[Send]:
        """The leader's decision on ``event``: its sends now (no writes, nothing in flight) or
        once its writes are committed (see the module docstring)."""
        assert self.state is not None
        commands = self.state.step(event)
        writes = [c for c in commands if isinstance(c, Write)]
        if not writes:
            if self._pending:
                self._pending[next(reversed(self._pending))].append(commands)
                return []
            rid = getattr(event.msg, "rid", None) if isinstance(event, Received) else None
            peer = event.peer if isinstance(event, Received) and isinstance(rid, int) else None
            return self.state.carry_out(commands, peer, rid)
        self._seq += 1
        seq = self._seq
        try:
            entry = (
                "writes",
                self.address,
                self._raft_term,
                seq,
                pickle.dumps(writes, protocol=pickle.HIGHEST_PROTOCOL),
            )
        except Exception as exc:  # a bug (a value pickle refuses): memory ran ahead of any store
            log.exception("cannot replicate %d write(s)", len(writes))
            self._reload(f"{type(exc).__name__} replicating a decision")
            return []
        self._pending[seq] = [commands]
        self._raft.append(entry, callback=lambda result, error: self._on_result(seq, result, error))
        return []

    def refusal(self, peer: bytes, msg: Any) -> list[Send]:
        """A follower's (or a leader's still loading) answer to ``msg`` from ``peer``."""
        leader = self.leader_address()
        if isinstance(msg, M.GetNimbusStatus) and (not leader or leader == self.address):
            # No leader to ask (an election, or no majority here): this replica's own view.
            return [Send(peer, M.Reply(rid=msg.rid, ok=True, data=self.status()))]
        if isinstance(msg, (M.RegisterSupervisor, M.Heartbeat)):
            if not leader or leader == self.address:
                return []  # silence: the board tries the next address after its timeout
            reason = f"this Nimbus replica is not the leader; {leader} is"
            return [Send(peer, M.RegisterReply(ok=False, reason=reason, leader=leader))]
        rid = getattr(msg, "rid", None)
        if isinstance(rid, int):
            return [Send(peer, M.NotLeader(rid=rid, leader="" if leader == self.address else leader))]
        return []

    def raise_term_past(self, reported: int) -> None:
        """Append an offset that lifts this leader's fencing term above ``reported``."""
        if self.state is not None:
            offset = max(self._offset, reported - self._raft_term + 1)
            self._raft.append(("offset", self.address, self._raft_term, offset))

    def follower_view(self) -> NimbusState:
        """A state loaded from this replica's store that never decides: what the server holds
        (its counters, its conf) until this replica leads."""
        return NimbusState(self.store, self.conf, leadership=ReplicaLeadership(self, 0))

    def leader_address(self) -> str:
        """The control address of the replica Raft names leader; "" while none is known."""
        node = self._raft._getLeader()
        if node is None:
            return ""
        raft = str(node.id if hasattr(node, "id") else node)
        for control in self.peers:
            if raft_address(control) == raft:
                return control
        return ""

    def leader_http(self) -> str:
        """The leader's web page ("" while unknown): where a follower's page redirects."""
        leader = self.leader_address()
        if leader == self.address:
            return ""
        return str(self.replicas.get(leader, {}).get("http", ""))

    def status(self) -> dict[str, Any]:
        """``squall nimbus-status --json`` as this replica sees the group."""
        from pysyncobj.node import TCPNode

        leader = self.leader_address()
        raft_state = int(self._raft.getStatus()["state"])
        replicas: list[dict[str, Any]] = []
        for control in self.peers:
            info = self.replicas.get(control, {})
            pid: int | None
            if control == self.address:
                role, pid = ROLES.get(raft_state, "follower"), os.getpid()
            else:
                connected = self._raft.isNodeConnected(TCPNode(raft_address(control)))
                role = "leader" if control == leader else ("follower" if connected else "down")
                pid = info.get("pid") if role != "down" else None  # as the replica announced it
            replicas.append({"address": control, "role": role, "pid": pid})
        term = self.term if self.state is not None else int(self._raft._getTerm()) + self._offset
        return {"leader": leader, "term": term, "replicas": replicas}

    def close(self) -> None:
        """Stop pysyncobj's thread and close its journal (the loop has stopped)."""
        self._raft.destroy_synchronous()

    # -- carrying out -------------------------------------------------------------------------

    def _carry_out(self, entry: tuple[Any, ...]) -> list[Send]:
        self._applied += 1
        self.counters["entries_applied"] += 1
        kind = entry[0]
        if kind == "replica":
            _, control, http, pid = entry
            self.replicas[control] = {"http": http, "pid": pid}
            if control == self.address and pid == os.getpid():
                self._announced = True
            return []
        if kind == "leader":
            _, origin, term = entry
            self._log_leader = (origin, term)
            if origin == self.address and term == self._want_term and self._raft._isLeader():
                self._lead(term)
            return []
        if kind == "offset":
            _, origin, term, offset = entry
            if (origin, term) == self._log_leader and offset > self._offset:
                self._offset = offset
                if self.state is not None and origin == self.address:
                    self.term = term + offset
                    assert isinstance(self.state.leadership, ReplicaLeadership)
                    self.state.leadership.raised_to(self.term)
                    log.warning("the group's term offset is now %d: this leader's term is %d", offset, self.term)
            return []
        _, origin, term, seq, payload = entry
        if (origin, term) != self._log_leader:
            # A deposed leader's decision that reached the log after its successor's marker
            # (pysyncobj forwards a follower's append): every replica skips it alike.
            self.counters["stale_entries"] += 1
            return []
        if self._applied > self._position:  # else: stored before this replica restarted
            writes = pickle.loads(payload)
            try:
                self.store.carry_out([*writes, SaveLogPosition(self._applied)])
                self._position = self._applied
            except StoreError as exc:
                self.counters["store_errors"] += 1
                log.error("replicated entry %d could not be stored on this replica: %s", self._applied, exc)
                if self._raft._isLeader():  # a leader whose store fails hands leadership on
                    self._step_down("its store failed")
                    self._raft.transferLeadership()
                return []
        if origin != self.address or self.state is None:
            return []
        out: list[Send] = []
        for commands in self._pending.pop(seq, []):
            out.extend(self.state.carry_out([c for c in commands if not isinstance(c, Write)]))
        return out

    def _lead(self, raft_term: int) -> None:
        self._raft_term, self.term = raft_term, raft_term + self._offset
        self._pending.clear()
        self.state = NimbusState(self.store, self.conf, leadership=ReplicaLeadership(self, self.term))
        self.counters["leads"] += 1
        log.info("this replica (%s) leads, term %d: state loaded from its store", self.address, self.term)

    def _step_down(self, why: str) -> None:
        self._want_term = 0
        self._held.clear()
        if self.state is None:
            return
        dropped = sum(len(v) for v in self._pending.values())
        self.state = None
        self._pending.clear()
        self.counters["stepped_down"] += 1
        log.warning("this replica stops deciding (%s); %d decision(s) in flight dropped", why, dropped)


def _make_log(self_node: str, others: list[str], conf: Any, on_committed: Callable[[tuple[Any, ...]], None]) -> Any:
    """A pysyncobj ``SyncObj`` whose one replicated method hands each committed entry to
    ``on_committed`` (on pysyncobj's thread). Defined here so the import stays lazy."""
    from pysyncobj import SyncObj, replicated

    class RaftLog(SyncObj):
        def __init__(self) -> None:
            self._sink = on_committed  # set before SyncObj's init: never part of a snapshot
            super().__init__(self_node, others, conf)

        @replicated
        def append(self, entry: tuple[Any, ...]) -> None:
            self._sink(entry)

    return RaftLog()
