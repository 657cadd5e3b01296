"""The simulated supervisors of ``benchmarks/scale.py``: hundreds of boards in a few processes.

Each board is one DEALER that registers, heartbeats every ``heartbeat_s`` (staggered) with a
report per worker it was assigned — cumulative counters, CPU time and per-source receive
counts for each executor — and obeys every assignment (reports its version, paused, and the
snapshots of executors it gave up, so a live migration goes through). Like a real supervisor
(``squall.supervisor.state``), a board that Nimbus refuses or forgot (``RegisterReply(ok=False)``,
the answer to a heartbeat from a board declared dead) registers again ``heartbeat_s`` later.

On a real cluster every board has its own CPU; here one process runs a hundred or more, so
what one board does must not hold up the others' heartbeats: due heartbeats are sent between
any two frames the process handles, not only once all the frames that came in are handled
(a push to every board brings one ~90 KB assignment per board at 5,000 executors). Before,
on a machine at load 5-9, one process's turn through a push took 12 s of wall time for 0.7 s
of CPU (it waited for a CPU), its boards sent nothing for 13 s, Nimbus rightly declared them
dead, and, never registering again, they stayed silent for the rest of the run.

Each process counts what it did (:class:`SimStats`) and hands the counts to the driver when
asked (the ``"stats"`` command), so a run whose boards fell silent says why: heartbeats sent,
late ones, refusals and their reasons, re-registrations, its longest turn, its CPU.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

PORTS_PER_BOARD = 4
CLOCK_HZ = 1.5e9
SOURCES_PER_EXECUTOR = 3  # received_from entries per executor in a report
TUPLES_PER_S = 200.0  # per executor, for the counters
TURN_S = 0.2  # a turn handles sockets for about this long, then the driver's commands are read


@dataclass
class Board:
    """One simulated supervisor: its socket, what it was told to run, its counters."""

    id: str
    sock: Any
    seq: int = 0
    registered: bool = False
    silent: bool = False
    next_heartbeat: float = 0.0
    next_register: float = 0.0  # when an unregistered board (re)registers
    last_heartbeat: float = 0.0
    version: int = -1
    workers: dict[tuple[str, int], Any] = field(default_factory=dict)  # (topology, port) -> WorkerAssignment
    released: dict[tuple[str, int], dict[int, bytes]] = field(default_factory=dict)
    started: float = field(default_factory=time.time)


@dataclass
class SimStats:
    """What one process of simulated boards did since the driver last asked (then reset).

    ``longest_gap_s`` is the longest time between two heartbeats one board sent (the period
    is ``heartbeat_s``: much more means the process could not keep its boards on time);
    ``longest_turn_s`` the longest pass of its loop (frames handled and heartbeats sent)."""

    heartbeats: int = 0
    registrations: int = 0  # RegisterSupervisor sent (the first ones included)
    refused: int = 0  # RegisterReply(ok=False) received
    reasons: dict[str, int] = field(default_factory=dict)  # refusal reason -> count
    assignments: int = 0
    assignment_s: float = 0.0  # decoding and obeying them
    longest_gap_s: float = 0.0
    gap_board: str = ""
    longest_turn_s: float = 0.0
    longest_turn_cpu_s: float = 0.0  # that turn's CPU time: far below its wall time, it waited for a CPU
    longest_turn_frames: int = 0  # frames it handled
    cpu_s: float = 0.0  # the process's CPU (user + system)

    def merge(self, other: SimStats) -> SimStats:
        """Both processes' counts together (maxima for the longest ones)."""
        gap = max((self.longest_gap_s, self.gap_board), (other.longest_gap_s, other.gap_board))
        turn = max(
            (self.longest_turn_s, self.longest_turn_cpu_s, self.longest_turn_frames),
            (other.longest_turn_s, other.longest_turn_cpu_s, other.longest_turn_frames),
        )
        return SimStats(
            self.heartbeats + other.heartbeats,
            self.registrations + other.registrations,
            self.refused + other.refused,
            dict(Counter(self.reasons) + Counter(other.reasons)),
            self.assignments + other.assignments,
            self.assignment_s + other.assignment_s,
            gap[0],
            gap[1],
            *turn,
            self.cpu_s + other.cpu_s,
        )

    def line(self) -> str:
        refusals = ", ".join(f"{n} x {reason[:60]!r}" for reason, n in sorted(self.reasons.items()))
        return (
            f"{self.heartbeats} heartbeats sent, longest gap {self.longest_gap_s:.2f} s ({self.gap_board or '-'}), "
            f"{self.registrations} registrations, {self.refused} refused{f' ({refusals})' if refusals else ''}, "
            f"{self.assignments} assignments ({self.assignment_s:.2f} s), longest turn {self.longest_turn_s:.2f} s "
            f"({self.longest_turn_cpu_s:.2f} s CPU, {self.longest_turn_frames} frames), "
            f"CPU {self.cpu_s:.1f} s"
        )


_SOURCES: dict[int, list[int]] = {}


def _sources(ex: int, placement: dict[int, str]) -> list[int]:
    """The executors ``ex`` reports receiving from: a few, fixed per executor (a sparse
    traffic graph, as fields or local groupings give; shuffle between stages of hundreds of
    executors would report hundreds each)."""
    got = _SOURCES.get(ex)
    if got is None:
        ids = sorted(placement)
        got = _SOURCES[ex] = random.Random(ex).sample(ids, min(SOURCES_PER_EXECUTOR, len(ids)))
    return got


def _metrics(board: Board, wa: Any, now: float) -> Any:
    from squall import messages as M

    age = now - board.started
    executed = int(age * TUPLES_PER_S)
    executors = []
    for ex in wa.executors:
        sources = _sources(ex, wa.placement)
        executors.append(
            M.ExecutorMetrics(
                executor=ex,
                component="sim",
                emitted=executed,
                transferred=executed,
                executed=executed,
                acked=0,
                failed=0,
                errors=0,
                cpu_s=age * 0.01 * (1 + ex % 7),
                received_from={s: executed // len(sources) for s in sources},
            )
        )
    # Remote items, no queue and no data link with a frame in flight (none reported): a live
    # migration sees quiescence at once.
    remote = 0 if wa.paused else executed
    return M.WorkerMetrics(
        at=now,
        clock_hz=CLOCK_HZ,
        executors=executors,
        sent_remote=remote,
        received_remote=remote,
        rss_bytes=25 << 20,
        queued=0,
        links=M.DataLinks(endpoint=f"{board.id}:{wa.port}"),
    )


def _heartbeat(board: Board, now: float) -> None:
    from squall import messages as M
    from squall.wire import encode

    reports = [
        M.WorkerReport(
            topology=t,
            port=p,
            pid=os.getpid(),
            state="running",
            assignment_version=wa.assignment_version,
            metrics=_metrics(board, wa, now),
            paused=wa.paused,
            released=board.released.get((t, p), {}),
        )
        for (t, p), wa in sorted(board.workers.items())
    ]
    board.seq += 1
    board.last_heartbeat = now
    board.sock.send(encode(M.Heartbeat(board.id, board.seq, reports, rss_bytes=40 << 20)))


def _registration(board_id: str) -> bytes:
    from squall import messages as M
    from squall.wire import encode

    return encode(
        M.RegisterSupervisor(
            supervisor_id=board_id,
            host=f"sim-{board_id}",
            ports=[7000 + p for p in range(PORTS_PER_BOARD)],
            capacity_hz=4 * CLOCK_HZ,
            clock_hz=CLOCK_HZ,
            cores=4,
            memory_mb=4096,
            pid=os.getpid(),
        )
    )


def _obey(board: Board, msg: Any, events: Any) -> None:
    """Run what the assignment says: note executors given up (their 'snapshots')."""
    new = {(wa.topology, wa.port): wa for wa in msg.workers}
    released: dict[tuple[str, int], dict[int, bytes]] = {}
    for key, wa in new.items():
        old = board.workers.get(key)
        if old is not None and old.assignment_version != wa.assignment_version:
            gone = set(old.executors) - set(wa.executors)
            if gone:
                released[key] = {ex: b"sim-state" for ex in sorted(gone)}
        elif old is not None:
            released[key] = board.released.get(key, {})
    board.workers, board.released, board.version = new, released, msg.version
    per_topology: dict[str, int] = {}
    for t, _ in new:
        per_topology[t] = per_topology.get(t, 0) + 1
    events.put(("assigned", board.id, time.time(), per_topology))


class BoardsProcess:
    """The boards of one process: their sockets, their clocks, and what they did (``stats``)."""

    def __init__(self, ids: list[str], address: str, events: Any, heartbeat_s: float) -> None:
        import zmq

        self.events = events
        self.heartbeat_s = heartbeat_s
        self.ctx = zmq.Context()
        self.poller = zmq.Poller()
        self.boards: dict[Any, Board] = {}
        self.stats = SimStats()
        self._cpu0 = sum(os.times()[:2])
        start = time.time()
        for k, b in enumerate(ids):
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(address)
            # Staggered over one period, as boards that started at different times.
            board = Board(b, sock, next_heartbeat=start + heartbeat_s * k / max(1, len(ids)), next_register=start)
            self.boards[sock] = board
            self.poller.register(sock, zmq.POLLIN)
        self.by_id = {board.id: board for board in self.boards.values()}
        self._earliest = start  # no board has anything due before this

    def turn(self, poll_ms: int) -> None:
        """Handle what came in, sending what falls due in between (see the module docstring)."""
        import zmq

        from squall import messages as M
        from squall.wire import WireError, decode

        ready = self.poller.poll(poll_ms)
        started, cpu_started, frames = time.time(), time.thread_time(), 0
        self.send_due(started)
        for sock, _ in ready:
            if time.time() - started > TURN_S:
                break  # the rest stay readable: handled next turn, after the driver's commands
            board = self.boards[sock]
            while True:
                try:
                    frame = sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                frames += 1
                if board.silent:
                    continue
                began = time.time()
                try:
                    msg = decode(frame)
                except WireError:
                    continue
                if isinstance(msg, M.RegisterReply):
                    self._on_register_reply(board, msg, began)
                elif isinstance(msg, M.SupervisorAssignment):
                    _obey(board, msg, self.events)
                    self.stats.assignments += 1
                    self.stats.assignment_s += time.time() - began
                self.send_due(time.time())
        self.send_due(time.time())
        took = time.time() - started
        if took > self.stats.longest_turn_s:
            self.stats.longest_turn_s, self.stats.longest_turn_frames = took, frames
            self.stats.longest_turn_cpu_s = time.thread_time() - cpu_started

    def _on_register_reply(self, board: Board, msg: Any, now: float) -> None:
        if msg.ok:
            if not board.registered:
                board.registered = True
                board.next_heartbeat = max(board.next_heartbeat, now)
                self._earliest = min(self._earliest, board.next_heartbeat)
            self.events.put(("registered", board.id, now, msg.reason))
            return
        # Refused, or forgotten (declared dead): register again, as a real supervisor does.
        self.stats.refused += 1
        self.stats.reasons[msg.reason] = self.stats.reasons.get(msg.reason, 0) + 1
        board.registered = False
        board.next_register = now + self.heartbeat_s
        self._earliest = min(self._earliest, board.next_register)
        self.events.put(("refused", board.id, now, msg.reason))

    def send_due(self, now: float) -> None:
        """Send every heartbeat and registration due by ``now``."""
        if now < self._earliest:
            return
        earliest = now + self.heartbeat_s
        for board in self.boards.values():
            if board.silent:
                continue
            if not board.registered:
                if now >= board.next_register:
                    board.sock.send(_registration(board.id))
                    board.next_register = now + self.heartbeat_s
                    self.stats.registrations += 1
                earliest = min(earliest, board.next_register)
                continue
            if now >= board.next_heartbeat:
                if board.last_heartbeat and now - board.last_heartbeat > self.stats.longest_gap_s:
                    self.stats.longest_gap_s, self.stats.gap_board = now - board.last_heartbeat, board.id
                _heartbeat(board, now)
                self.stats.heartbeats += 1
                board.next_heartbeat += self.heartbeat_s
                if board.next_heartbeat < now:  # fell behind: do not burst
                    board.next_heartbeat = now + self.heartbeat_s
            earliest = min(earliest, board.next_heartbeat)
        self._earliest = earliest

    def take_stats(self) -> dict[str, Any]:
        """The counts since the last call (reset)."""
        cpu = sum(os.times()[:2])
        self.stats.cpu_s, self._cpu0 = cpu - self._cpu0, cpu
        out, self.stats = asdict(self.stats), SimStats()
        return out

    def close(self) -> None:
        for sock in self.boards:
            sock.close()
        self.ctx.term()


def run_boards(ids: list[str], address: str, commands: Any, events: Any, heartbeat_s: float, nice: int) -> None:
    """A child process: run the boards ``ids`` until told to stop (at niceness ``nice``).
    Commands: ``("silence", board id)``, ``("stats", None)`` (answered on ``events`` as
    ``("stats", pid, time, SimStats as a dict)``), ``("stop", None)``."""
    import queue

    os.nice(nice)
    boards = BoardsProcess(ids, address, events, heartbeat_s)
    running = True
    while running:
        boards.turn(20)
        try:
            while True:
                cmd, arg = commands.get_nowait()
                if cmd == "silence" and arg in boards.by_id:
                    boards.by_id[arg].silent = True
                    events.put(("silenced", arg, time.time(), boards.by_id[arg].last_heartbeat))
                elif cmd == "stats":
                    events.put(("stats", os.getpid(), time.time(), boards.take_stats()))
                elif cmd == "stop":
                    running = False
        except queue.Empty:
            pass
    boards.close()
