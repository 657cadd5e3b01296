"""The supervisor daemon: the I/O around ``SupervisorState``.

It talks to Nimbus over a DEALER, to its workers over a ROUTER bound on loopback, starts
workers as ``python -m squall.supervisor.worker LAUNCH_FILE`` and watches them. Guarantees:

* no frame, however malformed, stops the daemon: bad frames are counted and logged once;
* nothing in the loop waits: stopping a worker sends SIGTERM and moves on (SIGKILL follows
  after ``STOP_GRACE_S``, checked each iteration), and a worker for a port still held by a
  stopping process starts once that process is gone, so the port is never shared; a code
  fetch is sent without blocking and sent again every ``FETCH_RETRY_S`` until answered;
  a migrating executor's snapshot is fetched the same way, one at a time (the state decides
  which and when, ``squall.supervisor.arriving_states``);
* when the daemon stops (SIGTERM, SIGINT or ``stop()``) every worker it started is stopped;
  workers also exit by themselves if the daemon dies (they watch their parent);
* disk stays bounded: extracted code of topologies no longer wanted (and of older
  versions) is deleted, at start and when a new version arrives; a worker's log is rotated
  at ``MAX_LOG_BYTES`` when the worker starts (one previous file kept);
* Nimbus may move: the daemon holds a list of Nimbus addresses (``nimbus``, or what
  ``rediscover`` returns) and, when the state finds Nimbus silent for ``nimbus_timeout_s``
  (``ReconnectNimbus``), connects to the next one and registers there; a registration refused
  with a ``leader`` address is followed there at once. Workers are not touched.
* the socket to Nimbus carries DSCP ``control_dscp`` (CS5 by default, 0: unmarked) on every
  connection it makes; the workers' sockets, loopback and data plane, are never marked.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import zmq

from squall import messages as m
from squall.bundle import BundleError, digest, extract_bundle
from squall.control_mark import DEFAULT_CONTROL_DSCP, SUPERVISOR_CONTROL_DSCP, check_dscp, mark_control
from squall.security import ClusterKeys, release, secure_client, secure_server
from squall.supervisor.arriving_states import FetchSnapshot, Key
from squall.supervisor.board_metrics import BoardReader
from squall.supervisor.facts import BoardFacts
from squall.supervisor.state import (
    DEFAULT_NIMBUS_TIMEOUT_S,
    FetchTopology,
    ReconnectNimbus,
    SendNimbus,
    StartWorker,
    StopWorker,
    SupervisorState,
    UpdateWorker,
)
from squall.supervisor.worker import ERROR_SUFFIX
from squall.wire import WireError, decode, encode, limit_of

log = logging.getLogger("squall.supervisor")
STOP_GRACE_S = 3.0
FETCH_RETRY_S = 10.0  # a code fetch unanswered this long is sent again (a lost frame, a restarted Nimbus)
MAX_LOG_BYTES = 10 * 1024 * 1024  # per worker log, rotated when the worker starts
DIGEST_CHARS = len(digest(b""))  # a code folder is TOPOLOGY-DIGEST: the length tells "wc-<digest>" from "wc-x-<digest>"
# A heartbeat is a few kB, except one that carries the snapshots of executors the worker
# released during a migration (user state): allow what the control plane to Nimbus allows.
WORKER_FRAME_LIMIT = limit_of("WorkerHeartbeat").frame_bytes  # what workers send up: heartbeats with snapshots
NIMBUS_FRAME_LIMIT = limit_of("Reply").frame_bytes  # what Nimbus sends down: the largest is a bundle reply


class SupervisorDaemon:
    def __init__(
        self,
        nimbus: str | list[str],
        facts: BoardFacts,
        ports: list[int],
        data_dir: Path,
        host: str = "127.0.0.1",
        cluster: str = "squall",
        metrics_port: int = 0,
        keys: ClusterKeys | None = None,
        nimbus_timeout_s: float = DEFAULT_NIMBUS_TIMEOUT_S,
        rediscover: Callable[[], list[str]] | None = None,
        control_dscp: int = DEFAULT_CONTROL_DSCP,
    ) -> None:
        # Every address Nimbus may answer on, tried in order; ``self.nimbus`` is the current one.
        self.nimbus_addresses = [nimbus] if isinstance(nimbus, str) else list(nimbus)
        if not self.nimbus_addresses:
            raise ValueError("a supervisor needs at least one Nimbus address")
        self.nimbus = self.nimbus_addresses[0]
        self.rediscover = rediscover  # a fresh address list when every known address fell silent
        # The mark on the socket to Nimbus (squall.control_mark): heartbeats pass data on a busy link.
        self.control_dscp = check_dscp(control_dscp, SUPERVISOR_CONTROL_DSCP)
        self.keys = keys  # CURVE to Nimbus and to the workers, who get the folder (squall.security)
        self.facts = facts
        self.ports = ports
        self.host = host
        self.data_dir = Path(data_dir)
        self.metrics_port = metrics_port
        self.state = SupervisorState(
            registration=m.RegisterSupervisor(
                supervisor_id=facts.supervisor_id,
                host=host,
                ports=list(ports),
                capacity_hz=facts.capacity_hz,
                clock_hz=facts.clock_hz,
                cores=facts.cores,
                memory_mb=facts.memory_mb,
                pid=os.getpid(),
                cluster=cluster,
                link_mbit=facts.link_mbit,
                link_delay_ms=facts.link_delay_ms,
            )
        )
        self.state.nimbus_timeout_s = nimbus_timeout_s
        self.procs: dict[int, subprocess.Popen] = {}
        self.topology_dirs: dict[str, Path] = {}
        self.topology_specs: dict[str, dict] = {}
        self.bad_frames = 0
        self._logged_bad: set[str] = set()
        self._rids = itertools.count(1)
        self._fetches: dict[int, str] = {}  # rid -> topology, of fetches sent
        self._snapshot_fetches: dict[int, Key] = {}  # rid -> snapshot, of snapshot fetches sent
        self._wanted: dict[str, float | None] = {}  # topology -> when its fetch was last sent (None: not yet)
        self._stopping: dict[int, tuple[subprocess.Popen, float]] = {}  # port -> (process, SIGKILL due)
        self._deferred: dict[int, m.WorkerAssignment] = {}  # port -> start waiting for the old process
        self._stop = threading.Event()
        self._process = psutil.Process()
        self.state.read_board = BoardReader().read  # the board's CPU and memory, per heartbeat

    # -- lifecycle -----------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def run(self) -> None:
        (self.data_dir / "workers").mkdir(parents=True, exist_ok=True)
        ctx = zmq.Context()
        self.nimbus_sock = ctx.socket(zmq.DEALER)
        self.nimbus_sock.setsockopt(zmq.LINGER, 0)
        self.nimbus_sock.setsockopt(zmq.MAXMSGSIZE, NIMBUS_FRAME_LIMIT)  # zmq drops larger peers
        mark_control(self.nimbus_sock, self.control_dscp)  # before connect; kept across reconnects
        secure_client(self.nimbus_sock, self.keys)
        self.nimbus_sock.connect(f"tcp://{self.nimbus}")
        self.worker_sock = ctx.socket(zmq.ROUTER)
        self.worker_sock.setsockopt(zmq.LINGER, 0)
        self.worker_sock.setsockopt(zmq.MAXMSGSIZE, WORKER_FRAME_LIMIT)
        secure_server(self.worker_sock, self.keys)
        port = self.worker_sock.bind_to_random_port("tcp://127.0.0.1")
        self.worker_endpoint = f"tcp://127.0.0.1:{port}"
        if self.metrics_port:
            from squall.supervisor.prom import serve_metrics

            serve_metrics(self, self.metrics_port)
        poller = zmq.Poller()
        poller.register(self.nimbus_sock, zmq.POLLIN)
        poller.register(self.worker_sock, zmq.POLLIN)
        log.info(
            "supervisor %s: %d slots %s, capacity %.2f GHz, Nimbus %s",
            self.facts.supervisor_id,
            len(self.ports),
            self.ports,
            self.facts.capacity_hz / 1e9,
            self.nimbus,
        )
        self._remove_code(keep=set())  # no worker runs yet: code left by an earlier run is stale
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(100))
                now = time.monotonic()
                if self.nimbus_sock in events:
                    self._drain_nimbus(now)
                if self.worker_sock in events:
                    self._drain_workers(now)
                self._reap(now)
                self._finish_stops(now)
                self._send_fetches(now)
                self.state.rss_bytes = self._process.memory_info().rss
                self._execute(self.state.tick(now))
        finally:
            for port in list(self.procs):
                self._stop_worker(port)
            self._finish_stops(time.monotonic(), wait=True)  # exiting: waiting is fine now
            release(ctx)
            ctx.destroy(linger=0)

    # -- inbound -------------------------------------------------------------------------

    def _bad(self, where: str, exc: Exception) -> None:
        self.bad_frames += 1
        if where not in self._logged_bad:
            self._logged_bad.add(where)
            log.warning("dropped a bad frame from %s: %s (further ones are counted)", where, exc)

    def _waiting(self, sock: zmq.Socket, where: str, parts: int) -> Iterator[Any]:
        """The decoded messages waiting on ``sock`` (``parts`` frames each: a ROUTER's carry
        the sender's identity first); malformed ones are counted and dropped."""
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != parts:
                self._bad(where, WireError(f"{len(frames)} frame parts"))
                continue
            try:
                msg = decode(frames[-1])
            except WireError as exc:
                self._bad(where, exc)
                continue
            yield msg

    def _drain_nimbus(self, now: float) -> None:
        for msg in self._waiting(self.nimbus_sock, "nimbus", parts=1):
            if isinstance(msg, m.RegisterReply):
                if not msg.ok and msg.leader and msg.leader != self.nimbus:
                    log.info("Nimbus at %s is not the leader; registering with %s", self.nimbus, msg.leader)
                    self._switch_nimbus(msg.leader)
                elif not msg.ok:
                    log.warning("Nimbus refused registration: %s", msg.reason)
                self._execute(self.state.on_register_reply(msg, now))
            elif isinstance(msg, m.HeartbeatAck):
                self._execute(self.state.on_heartbeat_ack(msg, now))
            elif isinstance(msg, m.SupervisorAssignment):
                self._execute(self.state.on_assignment(msg, now))
            elif isinstance(msg, m.Reply) and msg.rid in self._snapshot_fetches:
                self._execute(self.state.on_snapshot_reply(self._snapshot_fetches.pop(msg.rid), msg, now))
            elif isinstance(msg, m.Reply):
                self.state.on_nimbus_heard(now)
                self._on_fetch_reply(msg, now)
            else:
                self._bad("nimbus", WireError(f"unexpected {type(msg).__name__}"))

    def _drain_workers(self, now: float) -> None:
        for msg in self._waiting(self.worker_sock, "worker", parts=2):
            if isinstance(msg, m.WorkerHeartbeat):
                self._execute(self.state.on_worker_heartbeat(msg, now))
            else:
                self._bad("worker", WireError(f"unexpected {type(msg).__name__}"))

    def _on_fetch_reply(self, reply: m.Reply, now: float) -> None:
        topology = self._fetches.pop(reply.rid, None)
        if topology is None or topology not in self._wanted:
            return  # an answer to a fetch already answered (a retry crossed it)
        del self._wanted[topology]
        if not reply.ok or not isinstance(reply.data, dict):
            self._execute(self.state.on_topology_unavailable(topology, reply.error or "bad reply", now))
            return
        try:
            bundle = reply.data["bundle"]
            target = self.data_dir / "topologies" / f"{topology}-{digest(bundle)}"
            extract_bundle(bundle, target)
            self.topology_dirs[topology] = target
            self.topology_specs[topology] = reply.data["spec"]
            self._remove_code(keep=set(self.topology_dirs.values()), prefix=f"{topology}-")
        except (BundleError, KeyError, TypeError, OSError) as exc:
            log.error("topology %s: cannot unpack its code: %s", topology, exc)
            self._execute(self.state.on_topology_unavailable(topology, str(exc), now))
            return
        self._execute(self.state.on_topology_ready(topology, now))

    # -- commands ------------------------------------------------------------------------

    def _execute(self, commands: list[Any]) -> None:
        for cmd in commands:
            if isinstance(cmd, SendNimbus):
                try:
                    # Never block the loop: with no link up (Nimbus down, or refusing our keys'
                    # handshake) a DEALER send waits forever, and SIGTERM would not be handled.
                    # Registration is retried each tick and heartbeats are cumulative.
                    self.nimbus_sock.send(encode(cmd.msg), zmq.NOBLOCK)
                except zmq.Again:
                    log.debug("no link to Nimbus: %s dropped", type(cmd.msg).__name__)
            elif isinstance(cmd, FetchTopology):
                self._wanted[cmd.topology] = None
                self._send_fetches(time.monotonic())
            elif isinstance(cmd, FetchSnapshot):
                self._fetch_snapshot(cmd)
            elif isinstance(cmd, StartWorker):
                self._start_worker(cmd.assignment)
            elif isinstance(cmd, StopWorker):
                self._stop_worker(cmd.port)
            elif isinstance(cmd, UpdateWorker):
                self.worker_sock.send_multipart([str(cmd.port).encode(), encode(cmd.update)])
            elif isinstance(cmd, ReconnectNimbus):
                self._next_nimbus(cmd.silent_s, cmd.attempt)

    # -- finding Nimbus ------------------------------------------------------------------

    def _next_nimbus(self, silent_s: float, attempt: int) -> None:
        """Nimbus at ``self.nimbus`` fell silent: move to the next known address; after the
        last one, ask discovery (when the addresses came from it) for a fresh list. Logged
        as a warning at the first attempt of a silence and every 20th (a long outage does
        not flood the log)."""
        addresses = self.nimbus_addresses
        i = addresses.index(self.nimbus) if self.nimbus in addresses else -1
        if i + 1 >= len(addresses) and self.rediscover is not None:
            found = self.rediscover()  # one short search round; workers run on meanwhile
            if found:
                self.nimbus_addresses = addresses = list(dict.fromkeys(found))
                i = -1
        target = addresses[(i + 1) % len(addresses)]
        log.log(
            logging.WARNING if attempt % 20 == 1 else logging.DEBUG,
            "no word from Nimbus at %s for %.1f s; trying %s (attempt %d; workers keep running)",
            self.nimbus,
            silent_s,
            target,
            attempt,
        )
        self._switch_nimbus(target)

    def _switch_nimbus(self, address: str) -> None:
        """Point the control-plane socket at ``address`` (a no-op when it already is)."""
        if address == self.nimbus:
            return
        try:
            self.nimbus_sock.disconnect(f"tcp://{self.nimbus}")
        except zmq.ZMQError:  # never connected (a bad address) or already gone
            pass
        self.nimbus = address
        if address not in self.nimbus_addresses:
            self.nimbus_addresses.append(address)
        self.nimbus_sock.connect(f"tcp://{address}")
        # Fetches in flight went to the old Nimbus: ask the new one at once.
        self._fetches.clear()
        self._wanted = dict.fromkeys(self._wanted)
        for key in self._snapshot_fetches.values():
            self.state.snapshots.unsent(key)
        self._snapshot_fetches.clear()

    def _fetch_snapshot(self, cmd: FetchSnapshot) -> None:
        """Ask Nimbus for one snapshot; never block (the state asks again at its next tick
        when the request could not leave)."""
        rid = next(self._rids)
        msg = m.GetSnapshot(rid=rid, topology=cmd.topology, executor=cmd.executor, digest=cmd.digest)
        try:
            self.nimbus_sock.send(encode(msg), zmq.NOBLOCK)
        except zmq.Again:
            self.state.snapshots.unsent(cmd.key)
            return
        # Every request stays awaited: after a retry, whichever answer comes first is taken
        # and a later one is ignored by the state (a few entries: retries are 10 s apart).
        self._snapshot_fetches[rid] = cmd.key

    def _send_fetches(self, now: float) -> None:
        """Send each wanted fetch not sent yet, or unanswered for ``FETCH_RETRY_S``; never block."""
        for topology, sent_at in list(self._wanted.items()):
            if sent_at is not None and now - sent_at < FETCH_RETRY_S:
                continue
            rid = next(self._rids)
            try:
                self.nimbus_sock.send(encode(m.GetTopology(rid=rid, name=topology)), zmq.NOBLOCK)
            except zmq.Again:  # no link to Nimbus now: try again next iteration
                continue
            if sent_at is not None:
                log.info("topology %s: no answer to the code fetch in %.0f s; asking again", topology, now - sent_at)
            self._fetches[rid] = topology
            self._wanted[topology] = now

    def _remove_code(self, keep: set[Path], prefix: str = "") -> None:
        """Delete extracted code folders (of ``prefix`` topologies) not in ``keep``."""
        root = self.data_dir / "topologies"
        if not root.is_dir():
            return
        for folder in root.iterdir():
            name = folder.name
            ours = name.startswith(prefix) and (not prefix or len(name) == len(prefix) + DIGEST_CHARS)
            if ours and folder not in keep and folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
                log.info("removed old code %s", folder)

    def _start_worker(self, assignment: m.WorkerAssignment) -> None:
        port = assignment.port
        if port in self.procs:  # never two processes on one port
            self._stop_worker(port)
        if port in self._stopping:  # the old process still holds the port: start when it is gone
            self._deferred[port] = assignment
            return
        self._deferred.pop(port, None)
        launch = m.WorkerLaunch(
            topology=assignment.topology,
            node=self.facts.supervisor_id,
            host=self.host,
            port=port,
            spec=self.topology_specs[assignment.topology],
            bundle_dir=str(self.topology_dirs[assignment.topology]),
            supervisor_endpoint=self.worker_endpoint,
            clock_hz=self.facts.clock_hz,
            assignment=assignment,
            keys_dir=self.keys.folder if self.keys else "",
        )
        workers_dir = self.data_dir / "workers"
        launch_file = workers_dir / f"{port}.launch"
        launch_file.write_bytes(encode(launch))
        launch_file.with_suffix(ERROR_SUFFIX).unlink(missing_ok=True)  # a reason left by an earlier run
        log_path = workers_dir / f"{port}.log"
        try:
            if log_path.stat().st_size > MAX_LOG_BYTES:
                os.replace(log_path, log_path.with_suffix(".log.1"))  # keep one previous file
        except FileNotFoundError:
            pass
        logfile = open(log_path, "ab")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "squall.supervisor.worker", str(launch_file)],
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                close_fds=True,
            )
        finally:
            logfile.close()
        self.procs[port] = proc
        log.info(
            "started worker %s:%d (pid %d) with executors %s", assignment.topology, port, proc.pid, assignment.executors
        )
        self.state.on_worker_started(port, proc.pid, time.monotonic())

    def _stop_worker(self, port: int) -> None:
        """SIGTERM now; ``_finish_stops`` kills it after the grace period. Never waits."""
        self._deferred.pop(port, None)
        proc = self.procs.pop(port, None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            self._stopping[port] = (proc, time.monotonic() + STOP_GRACE_S)
        else:
            log.info("stopped worker on port %d (pid %d)", port, proc.pid)

    def _finish_stops(self, now: float, wait: bool = False) -> None:
        """Reap stopping workers, SIGKILL those past their grace, start deferred workers whose
        port is free. With ``wait`` (the daemon exiting) block until every one is gone."""
        for port, (proc, kill_at) in list(self._stopping.items()):
            if wait and proc.poll() is None:
                try:
                    proc.wait(max(0.0, kill_at - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            if proc.poll() is None and (wait or now >= kill_at):
                proc.kill()
                proc.wait()  # SIGKILL: it is gone at once
            if proc.poll() is None:
                continue
            del self._stopping[port]
            log.info("stopped worker on port %d (pid %d)", port, proc.pid)
            deferred = self._deferred.pop(port, None)
            if deferred is not None and not wait:
                self._start_worker(deferred)

    def _reap(self, now: float) -> None:
        for port, proc in list(self.procs.items()):
            code = proc.poll()
            if code is not None:
                del self.procs[port]
                log.warning("worker on port %d (pid %d) exited with code %s", port, proc.pid, code)
                self._execute(self.state.on_worker_exited(port, code, now, self._exit_reason(port)))

    def _exit_reason(self, port: int) -> str:
        """What the worker wrote about why it could not start ("" when nothing)."""
        try:
            return (self.data_dir / "workers" / f"{port}{ERROR_SUFFIX}").read_text(errors="replace")[-2000:]
        except OSError:
            return ""
