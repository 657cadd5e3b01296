"""Nimbus's HTTP port: Prometheus ``/metrics``, a Storm-UI-compatible REST API and the web page.

Threads: the HTTP server answers on its own threads, and none of them touches
``NimbusState``. A GET takes the latest :class:`~squall.nimbus.snapshot.Snapshot` the server
loop published (``latest()``: a reference read, no lock, no round trip through the loop) and
renders its body (JSON data, or the whole ``/metrics`` text) from it on its own thread;
concurrent GETs of one route share one render (:class:`ReadCache`), so a crowd of readers
costs the loop nothing and a busy loop does not hold readers up. A topology's rebalance
events live in the store: they are read on a SQLite connection of the HTTP side's own
(``events``; through the loop only for an in-memory store, which tests use).
POSTs are put on the :class:`LoopInbox` as the request messages the CLI sends
(``SetActive``, ``KillTopology``, ``RebalanceTopology``); the HTTP thread waits for the
``Reply`` with a timeout, and a write that timed out was withdrawn, never applied later.

Guarantees: every error is a JSON body ``{"error", "errorMessage", "status"}`` with its
status code, never a stack trace; every POST needs ``X-Squall-Key`` (401 without, 403 with a
wrong one): ``nimbus.http.key`` in Nimbus's conf, or ``$SQUALL_HTTP_KEY``, else the cluster
keys' API token, else the token Nimbus wrote to its data directory; a POST carrying an
``Origin`` other than this server is refused (403) before anything else. At most
``MAX_CONNECTIONS`` connections are served at once (others get 503 and are closed) and a
connection silent for ``IO_TIMEOUT_S`` is closed, so slow or half-open clients cost a
bounded number of threads.

Why the standard library's server and not a server library (waitress, cheroot): what
protects the loop is that HTTP threads never touch the state, which no library gives; the
remaining needs (a connection cap, socket timeouts) are a semaphore and a class attribute
here, and every board would otherwise install one more dependency for a read-mostly page.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from squall import __version__
from squall import messages as M
from squall.nimbus import http_views as V
from squall.nimbus.history import History
from squall.nimbus.http_inbox import KEY_CONF, ApiError, KeyCheck, LoopInbox, cross_origin
from squall.nimbus.loop_stats import LoopStats
from squall.nimbus.prom import NimbusCollector, render
from squall.nimbus.snapshot import Snapshot
from squall.nimbus.state import NimbusState
from squall.nimbus.store import StoreError

log = logging.getLogger("squall.nimbus.http")

WEB_DIR = Path(__file__).with_name("web")
STATIC = {"/": "index.html", "/index.html": "index.html", "/app.js": "app.js", "/style.css": "style.css"}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
MAX_BODY = 64 * 1024
SAMPLE_S = 2.0
SAMPLE_COST_SHARE = 0.1  # at most this share of one core goes to sampling the history
MAX_CONNECTIONS = 32  # threads serving at once; a board has little memory to spare
IO_TIMEOUT_S = 10.0  # a client silent this long (headers, body or keep-alive) is dropped


# -- the server ----------------------------------------------------------------------------


class ApiServer(ThreadingHTTPServer):
    """The HTTP server: one thread per connection, at most ``max_connections`` of them."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        addr: tuple[str, int],
        latest: Callable[[], Snapshot],
        clock: Any,
        inbox: LoopInbox,
        registry: CollectorRegistry | None,
        keys: KeyCheck,
        sample_s: float = SAMPLE_S,
        max_connections: int | None = None,
        events: Callable[[str], list[dict[str, Any]]] | None = None,
    ) -> None:
        super().__init__(addr, Handler)
        self.events = events  # topology -> its rebalance events, read off the loop (None: ask the loop)
        self.latest, self.clock, self.inbox = latest, clock, inbox
        self.registry, self.keys = registry or CollectorRegistry(auto_describe=False), keys
        # Nimbus's own collector, when it is the registry's: /metrics renders it with
        # ``prom.render`` (the same bytes as the registry's encoder, far cheaper at scale).
        self.collector: NimbusCollector | None = None
        self.history = History()
        self.started = clock()
        self.reads = ReadCache()
        self.refused_connections = 0
        # A Nimbus replica that does not lead sets this: it returns None while this Nimbus
        # serves, else the leader's page ("" while no leader is known), where requests go.
        self.leader_page: Callable[[], str | None] = lambda: None
        self._slots = threading.BoundedSemaphore(max_connections or MAX_CONNECTIONS)
        self._stop = threading.Event()
        # Not ``_threads``: socketserver's ThreadingMixIn appends every request's thread to an
        # attribute of that name, so a list there kept every finished thread for good (about
        # 9 MiB an hour of leaked Thread objects in the 1-hour soak).
        self._own_threads = [
            threading.Thread(target=self.serve_forever, name="nimbus-http", daemon=True),
            threading.Thread(target=self._sample_loop, args=(sample_s,), name="nimbus-ui-sampler", daemon=True),
        ]

    def start(self) -> ApiServer:
        for t in self._own_threads:
            t.start()
        return self

    def shutdown(self) -> None:
        self._stop.set()
        super().shutdown()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve on a new thread if a slot is free, else answer 503 at once and close."""
        if not self._slots.acquire(blocking=False):
            self.refused_connections += 1
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def snapshot(self) -> Snapshot:
        """The latest snapshot the loop published (never waits for the loop)."""
        return self.latest()

    def snapshot_now(self) -> tuple[Snapshot, float]:
        snap = self.latest()
        return snap, snap.now

    def snapshot_age(self) -> float:
        """Seconds since the loop published the latest snapshot: about a tick when the loop
        is healthy, growing while it is stuck in one event."""
        return max(0.0, self.clock() - self.latest().now)

    def _sample_loop(self, every_s: float) -> None:
        """Sample the history every ``every_s``, or less often when a sample is costly: its
        CPU stays under SAMPLE_COST_SHARE of one core (at 500 boards a sample takes ~0.6 s of
        CPU, and holds the interpreter lock the server loop needs meanwhile)."""
        sampled: Snapshot | None = None
        wait_s = every_s
        while not self._stop.wait(wait_s):
            try:
                snap = self.latest()
                if snap is not sampled:  # a stuck loop publishes nothing new: no repeated point
                    started = time.thread_time()
                    self.history.sample(snap, snap.now)
                    sampled = snap
                    wait_s = max(every_s, (time.thread_time() - started) / SAMPLE_COST_SHARE)
            except Exception:  # the charts may lose a point; the sampler must keep going
                log.exception("history sample failed")


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class ReadCache:
    """Single-flight reads: concurrent requests for one route share one render on the loop,
    so a crowd of readers costs the loop one render per route at a time, and every reader
    still gets a body rendered after it asked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}

    def get(self, key: str, render: Callable[[], Any]) -> Any:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
        assert flight is not None
        if leader:
            try:
                flight.value = render()
            except BaseException as exc:
                flight.error = exc
            finally:
                with self._lock:
                    self._flights.pop(key, None)
                flight.done.set()
        elif not flight.done.wait(IO_TIMEOUT_S + 5):
            raise ApiError(504, "Nimbus did not render this page in time")
        if flight.error is not None:
            raise flight.error
        return flight.value


def start(
    state: NimbusState,
    clock: Any,
    host: str,
    port: int,
    inbox: LoopInbox,
    latest: Callable[[], Snapshot],
    sample_s: float = SAMPLE_S,
    api_token: str | None = None,
    loop_lag: Callable[[], tuple[float, float]] | None = None,
    events: Callable[[str], list[dict[str, Any]]] | None = None,
    loop_stats: LoopStats | None = None,
) -> ApiServer:
    """Bind ``host:port`` and serve in the background (``shutdown()`` + ``server_close()`` stop it).
    Pages render from ``latest()``, the snapshot the loop published last, and events come
    from ``events(topology)`` (through the loop when None); ``state`` is read here, on the
    caller's thread, for its conf only. ``api_token`` guards POSTs when no explicit key is
    configured (without any, POSTs are refused)."""
    keys = KeyCheck.from_conf(state.conf, fallback=api_token)
    server = ApiServer((host, port), latest, clock, inbox, None, keys, sample_s, events=events)
    server.collector = NimbusCollector(
        state, clock, loop_lag, source=server.snapshot_now, snapshot_age=server.snapshot_age, loop_stats=loop_stats
    )
    server.registry.register(server.collector)
    return server.start()


__all__ = ["ApiError", "ApiServer", "KeyCheck", "LoopInbox", "start"]

ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), h)
    for m, p, h in [
        ("GET", r"/api/v1/cluster/summary", "get_cluster"),
        ("GET", r"/api/v1/cluster/configuration", "get_configuration"),
        ("GET", r"/api/v1/nimbus/summary", "get_nimbus"),
        ("GET", r"/api/v1/supervisor/summary", "get_supervisors"),
        ("GET", r"/api/v1/topology/summary", "get_topologies"),
        ("GET", r"/api/v1/topology/(?P<id>[^/]+)", "get_topology"),
        ("GET", r"/api/v1/topology/(?P<id>[^/]+)/placement", "get_placement"),
        ("GET", r"/api/v1/topology/(?P<id>[^/]+)/traffic", "get_traffic"),
        ("GET", r"/api/v1/topology/(?P<id>[^/]+)/history", "get_history"),
        ("GET", r"/api/v1/topology/(?P<id>[^/]+)/events", "get_events"),
        ("POST", r"/api/v1/topology/(?P<id>[^/]+)/activate", "post_activate"),
        ("POST", r"/api/v1/topology/(?P<id>[^/]+)/deactivate", "post_deactivate"),
        ("POST", r"/api/v1/topology/(?P<id>[^/]+)/rebalance/(?P<wait>[^/]+)", "post_rebalance"),
        ("POST", r"/api/v1/topology/(?P<id>[^/]+)/kill/(?P<wait>[^/]+)", "post_kill"),
    ]
]


class Handler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"
    server_version = "squall-nimbus"
    timeout = IO_TIMEOUT_S  # applied to the socket in setup(): no read or write waits longer

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_HEAD(self) -> None:
        self._dispatch("GET", head=True)

    def _dispatch(self, method: str, head: bool = False) -> None:
        try:
            leader = self.server.leader_page()
            if leader is not None:
                return self._to_leader(leader, head)
            if method == "POST":
                refusal = cross_origin(self.headers)
                if refusal:
                    self.close_connection = True
                    raise ApiError(403, refusal)
            self._raw = self._read_body() if method == "POST" else b""
            url = urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            if method == "GET" and path == "/metrics":
                return self._metrics(head)
            if method == "GET" and path in STATIC:
                return self._static(STATIC[path], head)
            allowed = set()
            for m, pattern, name in ROUTES:
                match = pattern.fullmatch(path)
                if match:
                    allowed.add(m)
                    if m == method:
                        args = {k: unquote(v) for k, v in match.groupdict().items()}
                        body = getattr(self, name)(query=url.query, **args)
                        return self._json(200, body, head)
            if allowed:
                raise ApiError(405, f"{method} is not allowed on {path}; use {', '.join(sorted(allowed))}")
            raise ApiError(404, f"no such endpoint: {path}")
        except ApiError as exc:
            self._error(exc.status, str(exc))
        except OSError as exc:  # the client went away or stalled past the timeout: nobody to answer
            self.close_connection = True
            log.debug("HTTP %s %s: connection dropped: %s", method, self.path, exc)
        except Exception as exc:  # a bug answers 500 as JSON; the trace goes to the log only
            log.exception("HTTP %s %s failed", method, self.path)
            self._error(500, f"internal error: {type(exc).__name__}")

    # -- responses --

    def _to_leader(self, leader: str, head: bool) -> None:
        """A follower replica: 307 to the same path on the leader (a POST stays a POST)."""
        if not leader:
            raise ApiError(503, "this Nimbus replica is not the leader and no leader is elected yet; retry shortly")
        body = json.dumps({"leader": leader}).encode()
        self._send(307, body, "application/json", head, {"Location": leader.rstrip("/") + self.path})

    def _send(
        self, status: int, body: bytes, ctype: str, head: bool = False, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, data: Any, head: bool = False) -> None:
        body = json.dumps(V.as_json_safe(data), allow_nan=False, default=str).encode()
        self._send(status, body, "application/json", head)

    def _error(self, status: int, message: str) -> None:
        reason = self.responses.get(status, ("Error",))[0]
        self._json(status, {"error": reason, "errorMessage": message, "status": status})

    def _static(self, name: str, head: bool) -> None:
        path = WEB_DIR / name
        if not path.is_file():
            raise ApiError(404, f"{name} is missing from this installation")
        self._send(200, path.read_bytes(), CONTENT_TYPES[path.suffix], head)

    def _metrics(self, head: bool) -> None:
        encoder, ctype = choose_encoder(self.headers.get("Accept", ""))
        registry, collector = self.server.registry, self.server.collector
        body = self.server.reads.get(
            f"metrics {ctype}", lambda: render(collector, encoder) if collector else encoder(registry)
        )
        self._send(200, body, ctype, head)

    # -- reads (rendered here from a snapshot, see the module docstring) --

    def _read(self, fn: Callable[[Snapshot, float], Any]) -> Any:
        return self.server.reads.get(f"GET {self.path}", lambda: fn(*self.server.snapshot_now()))

    @staticmethod
    def _rec(st: Snapshot, name: str) -> Any:
        rec = st.topologies.get(name)
        if rec is None:
            raise ApiError(404, f"no topology named {name!r}")
        return rec

    def get_cluster(self, query: str) -> Any:
        return self._read(lambda st, now: V.cluster_summary(st, now, self.server.started))

    def get_configuration(self, query: str) -> Any:
        return self._read(lambda st, now: {k: v for k, v in st.conf.items() if k != KEY_CONF})

    def get_nimbus(self, query: str) -> Any:
        host, port = self.server.server_address[:2]
        return self._read(
            lambda st, now: {
                "nimbuses": [
                    {
                        "host": host,
                        "port": port,
                        "status": "Leader",
                        "version": __version__,
                        "nimbusUpTime": V.pretty_seconds(now - self.server.started),
                        "nimbusUpTimeSeconds": int(now - self.server.started),
                    }
                ]
            }
        )

    def get_supervisors(self, query: str) -> Any:
        return self._read(V.supervisor_summary)

    def get_topologies(self, query: str) -> Any:
        return self._read(V.topology_summary)

    def get_topology(self, query: str, id: str) -> Any:
        sys = "sys=true" in query.split("&") or "sys=1" in query.split("&")
        return self._read(lambda st, now: V.topology_page(st, self._rec(st, id), now, self.server.history, sys))

    def get_placement(self, query: str, id: str) -> Any:
        return self._read(lambda st, now: V.placement(st, self._rec(st, id)))

    def get_traffic(self, query: str, id: str) -> Any:
        return self._read(lambda st, now: V.traffic(st, self._rec(st, id)))

    def get_history(self, query: str, id: str) -> Any:
        def build(st: Snapshot, now: float) -> Any:
            self._rec(st, id)
            h = self.server.history
            return {"topology": id, "now": now, "samples": h.series(id), "placementChanges": h.marks(id)}

        return self._read(build)

    def get_events(self, query: str, id: str) -> Any:
        marks = self._read(lambda st, now: (self._rec(st, id), self.server.history.marks(id))[1])
        if self.server.events is not None:
            try:
                return V.events_body(id, self.server.events(id), marks)
            except StoreError as exc:
                raise ApiError(503, str(exc)) from None
        reply = self.server.inbox.submit(M.GetEvents, name=id)
        if not reply.ok:
            raise ApiError(404 if "no topology" in reply.error else 409, reply.error)
        return V.events_body(id, reply.data, marks)

    # -- writes (through the loop) --

    def _read_body(self) -> bytes:
        """Read the whole body first, so an early refusal leaves the connection usable."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "bad Content-Length") from None
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, f"body larger than {MAX_BODY} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _body(self) -> dict[str, Any]:
        raw = self._raw
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, f"body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "body must be a JSON object")
        return data

    def _call(self, operation: str, id: str, make: Any, **fields: Any) -> Any:
        self.server.keys.check(self.headers)
        reply = self.server.inbox.submit(make, name=id, **fields)
        if not reply.ok:
            status = 404 if reply.error.startswith("no topology named") else 400
            raise ApiError(status, reply.error)
        return {"topologyOperation": operation, "topologyId": id, "status": "success", "topology": reply.data}

    def post_activate(self, query: str, id: str) -> Any:
        self._body()
        return self._call("activate", id, M.SetActive, active=True)

    def post_deactivate(self, query: str, id: str) -> Any:
        self._body()
        return self._call("deactivate", id, M.SetActive, active=False)

    def post_kill(self, query: str, id: str, wait: str) -> Any:
        self._body()
        return self._call("kill", id, M.KillTopology, wait_s=_seconds(wait))

    def post_rebalance(self, query: str, id: str, wait: str) -> Any:
        opts = self._body().get("rebalanceOptions", {})
        if not isinstance(opts, dict):
            raise ApiError(400, "rebalanceOptions must be an object")
        workers = opts.get("numWorkers")
        if workers is not None:
            workers = _int(workers, "numWorkers")
        executors = opts.get("executors") or {}
        if not isinstance(executors, dict):
            raise ApiError(400, "rebalanceOptions.executors must map component -> parallelism")
        par = {str(k): _int(v, f"executors.{k}") for k, v in executors.items()}
        scheduler = opts.get("scheduler")
        if scheduler is not None and not isinstance(scheduler, str):
            raise ApiError(400, "rebalanceOptions.scheduler must be a string")
        return self._call(
            "rebalance",
            id,
            M.RebalanceTopology,
            wait_s=_seconds(wait),
            workers=workers,
            parallelism=par,
            scheduler=scheduler,
        )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"wait time must be a number of seconds, got {text!r}") from None
    if not 0 <= value < 1e9:
        raise ApiError(400, f"wait time must be >= 0 seconds, got {text!r}")
    return value


def _int(value: Any, what: str) -> int:
    """Storm sends parallelism as a string or a number."""
    try:
        number = int(str(value))
    except ValueError:
        raise ApiError(400, f"{what} must be an integer, got {value!r}") from None
    if number < 1:
        raise ApiError(400, f"{what} must be >= 1, got {number}")
    return number
