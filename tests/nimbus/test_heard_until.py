"""A Nimbus whose ZeroMQ I/O thread stalls declares no heartbeating board dead.

``squall nimbus`` runs as a real process; this test stops only its ZeroMQ I/O thread (with
ptrace, which stops one thread and not its process) for longer than the boards' timeout,
while the loop thread runs on and finds its socket empty, and three boards heartbeat every
0.1 s. Their heartbeats wait in the kernel meanwhile. Silence judged up to the moment the
socket was last found empty declared all three dead (what the server did before its
probe); judged up to the newest probe read, it waits for the thread. Then a board that
really stops is still declared dead within the timeout plus 1 s.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import zmq

from squall import messages as M
from squall.daemon_start import nimbus_argv, spawn_logged
from squall.nimbus.server import probe_endpoint
from squall.ports import free_port
from squall.wire import decode, encode

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

TIMEOUT_S = 2.0  # nimbus.supervisor.timeout.secs: a loaded machine may hold this test's boards 1 s
BEAT_S = 0.1
FREEZE_S = 3.5  # well past the timeout, with two ticks to spare
BOARDS = ("b1", "b2", "b3")

PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_DETACH = 0x4206, 0x4207, 17
WALL = 0x40000000  # __WALL: wait for a thread that is not the process's leader


def _ptrace(libc: ctypes.CDLL, request: int, tid: int) -> None:
    if libc.ptrace(request, tid, None, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"ptrace({request:#x}, {tid}): {os.strerror(err)}")


@contextlib.contextmanager
def stopped(tids: list[int]) -> Iterator[None]:
    """The threads ``tids`` (of a child process) stopped until the block ends; skips the
    test where this process may not trace its child."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    seized = []
    try:
        for tid in tids:
            try:
                _ptrace(libc, PTRACE_SEIZE, tid)
            except OSError as exc:
                pytest.skip(f"cannot trace the Nimbus process here: {exc}")
            seized.append(tid)
            _ptrace(libc, PTRACE_INTERRUPT, tid)
            waited, status = os.waitpid(tid, WALL)
            assert waited == tid and os.WIFSTOPPED(status), f"thread {tid} did not stop: status {status:#x}"
        yield
    finally:
        for tid in seized:
            _ptrace(libc, PTRACE_DETACH, tid)


def zmq_io_threads(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(t.name) for t in tasks.iterdir() if (t / "comm").read_text().startswith("ZMQbg/IO")]


class Board:
    """A board's control socket: registers, heartbeats, and counts what came back."""

    def __init__(self, ctx: zmq.Context, port: int, board_id: str, pid: int) -> None:
        self.id = board_id
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(f"tcp://127.0.0.1:{port}")
        self.sock.send(encode(M.RegisterSupervisor(board_id, "127.0.0.1", [free_port()], 1e9, 1e9, 1, 512, pid)))
        assert self.sock.poll(15_000), f"{board_id}: no answer to its registration"
        reply = decode(self.sock.recv())
        assert isinstance(reply, M.RegisterReply) and reply.ok, reply
        self.seq = 0
        self.acked: set[int] = set()
        self.refusals: list[str] = []

    def beat(self) -> None:
        self.seq += 1
        self.sock.send(encode(M.Heartbeat(self.id, self.seq, [])))

    def read(self) -> None:
        while self.sock.poll(0):
            msg = decode(self.sock.recv())
            if isinstance(msg, M.HeartbeatAck):
                self.acked.add(msg.seq)
            elif isinstance(msg, M.RegisterReply) and not msg.ok:
                self.refusals.append(msg.reason)


def beat_for(boards: list[Board], seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for board in boards:
            board.beat()
            board.read()
        time.sleep(BEAT_S)


@pytest.fixture
def nimbus(tmp_path):
    port = free_port()
    settings = ["--set", f"nimbus.supervisor.timeout.secs={TIMEOUT_S}", "--set", f"nimbus.heartbeat.secs={BEAT_S}"]
    argv = nimbus_argv("127.0.0.1", port, tmp_path / "data", 0, extra=["--no-discovery", *settings])
    proc = spawn_logged(argv, tmp_path / "nimbus.log")
    ctx = zmq.Context()
    try:
        yield proc, port, tmp_path / "nimbus.log", ctx
    finally:
        ctx.destroy(linger=0)
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_a_stalled_zeromq_io_thread_kills_no_heartbeating_board(nimbus):
    proc, port, log_path, ctx = nimbus
    boards = [Board(ctx, port, board_id, 1000 + k) for k, board_id in enumerate(BOARDS)]
    beat_for(boards, 1.0)
    threads = zmq_io_threads(proc.pid)
    assert threads, "no ZeroMQ I/O thread found in the Nimbus process"
    with stopped(threads):
        sent_before = {b.id: b.seq for b in boards}
        stalled = time.monotonic()
        beat_for(boards, FREEZE_S)
        stalled = time.monotonic() - stalled
    beat_for(boards, 1.5)
    assert stalled >= FREEZE_S
    log_text = log_path.read_text()
    assert "declared dead" not in log_text, log_text
    assert all(not b.refusals for b in boards), [(b.id, b.refusals) for b in boards]
    # The heartbeats sent during the stall were in flight, not lost: each one was read and
    # acknowledged once the thread ran again.
    for board in boards:
        during = set(range(sent_before[board.id] + 1, sent_before[board.id] + int(FREEZE_S / BEAT_S)))
        assert during <= board.acked, f"{board.id}: heartbeats sent during the stall never acknowledged"

    # A board that really stops is still found, within the timeout plus 1 s: when Nimbus
    # logged it, against when it sent its last heartbeat (both wall clock, so a late read of
    # the log by this test does not count).
    lost, alive = boards[0], boards[1:]
    lost.beat()
    last_beat = time.time()
    declared = None
    while declared is None and time.time() - last_beat < TIMEOUT_S + 5:
        beat_for(alive, BEAT_S)
        declared = death_logged(log_path.read_text(), lost.id)
    assert declared is not None, "the board that stopped was never declared dead"
    found_s = declared - last_beat
    assert found_s <= TIMEOUT_S + 1.0, f"declared dead {found_s:.2f} s after its last heartbeat"
    assert all(death_logged(log_path.read_text(), b.id) is None for b in alive)


def death_logged(log_text: str, board_id: str) -> float | None:
    """When (wall clock) Nimbus's log says ``board_id`` was declared dead; None if it does not."""
    for line in log_text.splitlines():
        if f"supervisor {board_id} declared dead" in line:
            return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


@pytest.mark.parametrize(
    ("bound", "probe"),
    [
        ("tcp://127.0.0.1:6627", "tcp://127.0.0.1:6627"),
        ("tcp://0.0.0.0:6627", "tcp://127.0.0.1:6627"),
        ("tcp://[::]:6627", "tcp://[::1]:6627"),
        ("tcp://10.0.0.7:6627", "tcp://10.0.0.7:6627"),
    ],
)
def test_the_probe_reaches_a_wildcard_bind_on_loopback(bound, probe):
    assert probe_endpoint(bound) == probe
