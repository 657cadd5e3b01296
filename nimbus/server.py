"""The thin loop around :class:`NimbusState`: a ZeroMQ ROUTER, a clock and an HTTP endpoint.

Guarantees: a malformed, unknown or oversized frame is counted (``bad_frames``), logged
once per kind of fault, and dropped — the loop never dies of input; ``tick`` runs about
every ``TICK_S`` seconds; ``stop()`` (or SIGTERM/SIGINT after
``install_signal_handlers``) ends ``run()`` within one poll interval, closing the socket
and the HTTP server. Peers may be DEALERs (one frame) or REQs (empty delimiter); a reply
goes back with the envelope its peer used.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

import zmq

from squall.nimbus.http_api import LoopInbox
from squall.nimbus.state import NimbusState, Send
from squall.security import ClusterKeys, release, secure_server
from squall.wire import MAX_FRAME_BYTES, WireError, decode, encode

log = logging.getLogger("squall.nimbus")

TICK_S = 0.5
POLL_MS = 100
FRAME_SLACK = 64 * 1024  # ZeroMQ drops a peer above MAXMSGSIZE; the codec rejects above the frame limit


class NimbusServer:
    def __init__(
        self, state: NimbusState, host: str = "0.0.0.0", port: int = 6627, http_port: int = 8080,
        clock: Any = time.time, keys: ClusterKeys | None = None,
    ) -> None:
        self.state = state
        self.keys = keys
        self.clock = clock
        self.lock = threading.Lock()  # the state is read by the metrics thread when scraped
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 500)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES + FRAME_SLACK)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 0)  # a reply to a vanished peer is dropped
        secure_server(self.sock, keys)  # with keys, only cluster members get through (CURVE)
        self.sock.bind(f"tcp://{host}:{port}")
        self.address = f"tcp://{host}:{port}"
        self._stop = threading.Event()
        self._req_peers: set[bytes] = set()
        self._logged_faults: set[str] = set()
        self.http: ThreadingHTTPServer | None = None
        self.inbox = LoopInbox()  # REST API POSTs, handled on this loop (see http_api)
        if http_port:
            from squall.nimbus.http_api import start as start_http

            self.http = start_http(state, self.lock, clock, host, http_port, self.inbox,
                                   api_token=keys.api_token() if keys else None)

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        log.info("nimbus listening on %s", self.address)
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        next_tick = 0.0
        try:
            while not self._stop.is_set():
                if poller.poll(POLL_MS):
                    self._drain()
                self._execute(self.inbox.drain(self._handle_local))
                now = self.clock()
                if now >= next_tick:
                    next_tick = now + TICK_S
                    with self.lock:
                        commands = self.state.tick(now)
                    self._execute(commands)
        finally:
            self.close()

    def close(self) -> None:
        if self.http is not None:
            self.http.shutdown()
            # Close the listening socket only: server_close() also joins request threads, and
            # some prometheus_client versions replace the list it joins with a plain list.
            self.http.socket.close()
            self.http = None
        self.sock.close()
        release(self.ctx)
        self.ctx.term()

    def _drain(self) -> None:
        for _ in range(1000):  # bounded, so ticks still happen under a flood
            try:
                parts = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._on_frames(parts)

    def _on_frames(self, parts: list[bytes]) -> None:
        if len(parts) == 3 and parts[1] == b"":
            self._req_peers.add(parts[0])
        elif len(parts) != 2:
            self._fault("envelope", f"{len(parts)} frame parts")
            return
        peer, frame = parts[0], parts[-1]
        try:
            msg = decode(frame)
        except WireError as exc:
            self._fault(str(exc).split(":")[0], str(exc))
            return
        with self.lock:
            commands = self.state.handle(peer, msg, self.clock())
        self._execute(commands)

    def _handle_local(self, peer: bytes, msg: Any) -> list[Send]:
        with self.lock:
            return self.state.handle(peer, msg, self.clock())

    def _fault(self, kind: str, detail: str) -> None:
        with self.lock:
            self.state.counters["bad_frames"] += 1
        if kind not in self._logged_faults and len(self._logged_faults) < 100:
            self._logged_faults.add(kind)
            log.warning("dropped a bad frame: %s (further ones of this kind are only counted)", detail[:200])

    def _execute(self, commands: list[Send]) -> None:
        for cmd in commands:
            frames = [cmd.peer, b"", encode(cmd.msg)] if cmd.peer in self._req_peers else [cmd.peer, encode(cmd.msg)]
            try:
                self.sock.send_multipart(frames, zmq.NOBLOCK)
            except zmq.ZMQError as exc:  # a full or vanished peer: the supervisor will resync
                log.debug("send to %r failed: %s", cmd.peer, exc)
