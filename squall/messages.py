"""Every message that crosses a socket, as typed frozen dataclasses (see ``squall.wire``).

Planes and who speaks:

* CLI -> Nimbus (DEALER -> ROUTER, port 6627): the ``*Request`` messages; Nimbus answers each
  with ``Reply`` carrying the request's ``rid``.
* Supervisor <-> Nimbus (DEALER -> ROUTER): ``RegisterSupervisor`` / ``Heartbeat`` up,
  ``RegisterReply`` / ``SupervisorAssignment`` down; ``GetTopology`` (to fetch a spec and
  its code bundle) and ``GetSnapshot`` (to fetch a migrating executor's snapshot, which the
  assignment names by ``StateRef``) are answered with ``Reply``.
* Worker <-> its supervisor (DEALER -> ROUTER on loopback): ``WorkerHeartbeat`` up,
  ``WorkerUpdate`` down. A worker starts from a ``WorkerLaunch`` file written by its
  supervisor.
* Worker -> worker (PUSH -> PULL on the slot port): tuple batches, encoded by
  ``squall.supervisor.transfer`` (not here: the hot path has its own compact codec).

Fencing (docs/failures.md): every ``SupervisorAssignment`` carries the ``term`` of the Nimbus
that issued it; a board orders assignments by (term, version), accepts a higher term whatever
its version and refuses an older term. Boards report the highest term they accepted in
``RegisterSupervisor`` and ``Heartbeat``, so a Nimbus started on an empty or rolled-back data
directory starts above it. ``term`` 0 is "sent by a Squall without terms" (old frames decode).

Metrics are cumulative counters since the worker started; Nimbus turns differences over its
window into rates (tuples/s, cycles/s), so a lost heartbeat loses no information.
"""

from __future__ import annotations

from dataclasses import field, replace
from typing import Any

from squall.wire import NON_NEGATIVE, SHARED_MAPS, message, record

# Complete-latency histogram bucket upper bounds in milliseconds (+inf implied): the R10
# series (ten per decade, each 1.26x the last) from 0.1 ms to 40 s. Fine enough that a p99
# read from it (interpolated inside a bucket) can show a 25% change, which is what the
# rebalance probation compares; coarser buckets made 2.0 -> 2.1 ms look like 2 -> 5 ms.
_R10 = (1.0, 1.25, 1.6, 2.0, 2.5, 3.2, 4.0, 5.0, 6.4, 8.0)
LATENCY_BUCKETS_MS: tuple[float, ...] = tuple(
    round(m * 10.0**e, 6) for e in range(-1, 5) for m in _R10 if m * 10.0**e <= 40000.0
)

# -- metrics -------------------------------------------------------------------------------


@record
class ExecutorMetrics:
    """Cumulative counters of one executor since its worker started."""

    executor: int
    component: str
    emitted: int = 0
    transferred: int = 0
    executed: int = 0
    acked: int = 0
    failed: int = 0
    errors: int = 0
    cpu_s: float = field(default=0.0, metadata=NON_NEGATIVE)  # CPU time spent running this executor
    received_from: dict[int, int] = field(default_factory=dict)  # source executor -> tuples
    latency_sum_ms: float = field(default=0.0, metadata=NON_NEGATIVE)  # spouts: complete latency
    latency_count: int = 0
    latency_buckets: list[int] = field(default_factory=list)  # counts per LATENCY_BUCKETS_MS (+inf last)
    # Destination executor -> control items this executor sent to it: acker items (init, ack,
    # fail) to an acker, and an acker's tree-complete/failed notices to a spout. Counted at the
    # sender because a control item carries no sender.
    sent_control: dict[int, int] = field(default_factory=dict, metadata=NON_NEGATIVE)


@record
class LinkMark:
    """Where one data link between two workers stands: the sender's token for the link and
    a frame number on it (frames handed over, at the sender; the last one received, at the
    receiver). Equal at both ends exactly when the link's last frame has arrived."""

    link: int = field(metadata=NON_NEGATIVE)
    frame: int = field(metadata=NON_NEGATIVE)


@record
class DataLinks:
    """A worker's data links, by the other end's data endpoint ("host:port"): what a
    migration's drain compares (docs/nimbus.md, "quiescent")."""

    endpoint: str  # this worker's own data endpoint, as its senders name it
    sent: dict[str, LinkMark] = field(default_factory=dict)  # receiver -> the link's last frame handed over
    received: dict[str, LinkMark] = field(default_factory=dict)  # sender -> its last frame received


@record
class WorkerMetrics:
    at: float  # wall-clock time (s) the counters were read
    clock_hz: float  # the node's clock, to turn cpu_s into cycles
    executors: list[ExecutorMetrics]
    sent_remote: int = 0  # tuples sent to other workers
    rss_bytes: int = 0
    received_remote: int = 0  # items received from other workers (data and acker items)
    queued: int = 0  # items waiting in local inboxes, outbox buffers and held for moving executors
    # All of the worker's CPU, and the part spent moving data (all default to 0 so a worker
    # of an older version still decodes; Nimbus derives overhead = process - executors - transfer).
    process_cpu_s: float = field(default=0.0, metadata=NON_NEGATIVE)  # every thread of the process
    transfer_cpu_s: float = field(default=0.0, metadata=NON_NEGATIVE)  # encode+send, receive+decode
    frames_sent: int = field(default=0, metadata=NON_NEGATIVE)  # data-plane frames over PUSH
    frames_received: int = field(default=0, metadata=NON_NEGATIVE)  # data-plane frames over PULL
    bytes_sent: int = field(default=0, metadata=NON_NEGATIVE)
    bytes_received: int = field(default=0, metadata=NON_NEGATIVE)
    # The loop thread's (the executors') CPU and the time it was ready to run but waited for
    # a CPU: another process, the board's own threads, or the board's quota holding it.
    loop_cpu_s: float = field(default=0.0, metadata=NON_NEGATIVE)
    loop_wait_s: float = field(default=0.0, metadata=NON_NEGATIVE)
    loop_runs: int = field(default=0, metadata=NON_NEGATIVE)  # times it was put on a CPU
    # Waits that began by polling (``squall.worker.spin.us``: a frame was expected), and those
    # of them a data frame ended before the spin was up.
    spins: int = field(default=0, metadata=NON_NEGATIVE)
    spin_hits: int = field(default=0, metadata=NON_NEGATIVE)
    # The data links' last frames, sent and received; None: a worker of an older version,
    # whose drain Nimbus cannot read (it waits for the drain timeout, and says why).
    links: DataLinks | None = None


@record
class WorkerReport:
    """A supervisor's view of one of its workers."""

    topology: str
    port: int
    pid: int
    state: str  # "starting" | "running" | "failed"
    assignment_version: int
    restarts: int = 0
    metrics: WorkerMetrics | None = None
    error: str = ""
    paused: bool = False  # the worker confirmed its spouts are held for a migration
    released: dict[int, bytes] = field(default_factory=dict)  # snapshots of executors it gave up


@record
class BoardMetrics:
    """A board's CPU and memory as its supervisor read them (see supervisor.board_metrics).

    ``source`` is "cgroup" when the supervisor runs in a non-root cgroup and the figures are
    that cgroup's (usage, quota, throttling, memory limit), else "system" (the whole machine).
    """

    at: float = field(metadata=NON_NEGATIVE)  # the supervisor's time.monotonic() when read
    cpu_s: float = field(metadata=NON_NEGATIVE)  # cumulative CPU seconds used by the board
    cores: float = field(metadata=NON_NEGATIVE)  # CPU capacity in cores (quota / period, else cores)
    cpu_period_s: float = field(default=0.0, metadata=NON_NEGATIVE)  # cfs period; 0 = no quota
    periods: int = field(default=0, metadata=NON_NEGATIVE)  # cpu.stat nr_periods
    throttled_periods: int = field(default=0, metadata=NON_NEGATIVE)  # cpu.stat nr_throttled
    throttled_s: float = field(default=0.0, metadata=NON_NEGATIVE)  # cpu.stat throttled time
    memory_used_bytes: int = field(default=0, metadata=NON_NEGATIVE)
    memory_limit_bytes: int = field(default=0, metadata=NON_NEGATIVE)
    source: str = "system"  # "cgroup" | "system"


# -- supervisor <-> nimbus ------------------------------------------------------------------


@message
class RegisterSupervisor:
    supervisor_id: str
    host: str
    ports: list[int]
    capacity_hz: float
    clock_hz: float
    cores: int
    memory_mb: int
    pid: int
    cluster: str = "squall"
    # The board's link as its operator states it (a supervisor cannot measure it); None =
    # unknown. The testbed passes its emulated links' rate and one-way delay.
    link_mbit: float | None = None
    link_delay_ms: float | None = None
    # The highest Nimbus term this board accepted an assignment of (0: none yet): a Nimbus
    # below it, or a stranger issuing the same term, starts a newer one (nimbus.leadership).
    term: int = field(default=0, metadata=NON_NEGATIVE)


@message
class RegisterReply:
    ok: bool
    reason: str = ""
    heartbeat_s: float = 1.0
    term: int = field(default=0, metadata=NON_NEGATIVE)  # the answering Nimbus's term
    # Set by a Nimbus that is not the leader (a follower replica): register there instead.
    leader: str = ""


@message
class HeartbeatAck:
    """Nimbus's answer to each heartbeat: proof to the board that its Nimbus is alive (a board
    that hears nothing for ``supervisor.nimbus.timeout.secs`` looks for another Nimbus)."""

    seq: int
    term: int = field(default=0, metadata=NON_NEGATIVE)
    # Released snapshots of this heartbeat that Nimbus holds or no longer needs, by slot port
    # (port -> executor ids): the board stops sending those. A snapshot can be megabytes (the
    # executor's queue travels in it); sent with every heartbeat until the migration moved on,
    # it crowded the board's control link on slow links.
    taken: dict[int, list[int]] = field(default_factory=dict)


@message
class Heartbeat:
    supervisor_id: str
    seq: int
    workers: list[WorkerReport]
    rss_bytes: int = 0
    board: BoardMetrics | None = None  # None: a supervisor of an older version
    term: int = field(default=0, metadata=NON_NEGATIVE)  # the highest Nimbus term the board accepted


@record
class StateRef:
    """A migrating executor's snapshot as an assignment names it: its SHA-256 (hex) and size
    in bytes. The supervisor fetches the bytes once (``GetSnapshot``), not with every push."""

    digest: str
    size: int = field(metadata=NON_NEGATIVE)


@record
class WorkerAssignment:
    """One worker a supervisor must run: its topology, slot port and executors, and where
    every executor of the topology lives (``placement``: executor id -> "host:port")."""

    topology: str
    port: int
    executors: list[int]
    placement: dict[int, str]
    active: bool
    assignment_version: int
    conf: dict[str, Any]
    # Live migration: ``paused`` holds the spouts (no deactivate() callback) while routes
    # switch; ``states`` are snapshots of executors that arrive here (executor id -> bytes):
    # what a worker gets from its supervisor, and what a Nimbus older than ``state_refs``
    # sent inline. ``state_refs`` name the snapshots a supervisor must fetch (``GetSnapshot``)
    # before it hands the assignment to its worker with their bytes in ``states``: Nimbus
    # sends references, so a re-pushed assignment does not carry megabytes again.
    paused: bool = False
    states: dict[int, bytes] = field(default_factory=dict)
    state_refs: dict[int, StateRef] = field(default_factory=dict)


@message
class SupervisorAssignment:
    """The full set of workers a supervisor must run (declarative: anything else stops).

    On the wire a topology's placement map is named once per board, not once per worker:
    :meth:`to_wire` moves it to ``placements`` (topology -> executor -> "host:port") and
    leaves the workers that share it an empty ``placement``; :meth:`from_wire` puts it back,
    so every decoded assignment has each worker's full map again (one map object shared by
    the workers of a topology) and ``placements`` empty. ``squall.wire`` applies both; a
    ``wire.Encoder`` also packs each map once for every board's frame (``SHARED_MAPS``). A
    supervisor older than ``placements`` refuses such a frame: "unknown field(s)
    ['placements']" in its log.
    """

    supervisor_id: str
    version: int
    workers: list[WorkerAssignment]
    term: int = field(default=0, metadata=NON_NEGATIVE)  # the issuing Nimbus's term: (term, version) orders
    placements: dict[str, dict[int, str]] = field(default_factory=dict, metadata=SHARED_MAPS)

    def to_wire(self) -> SupervisorAssignment:
        """The same assignment with each topology's placement named once (see above). A
        topology is left as it is when one of its workers has an empty placement (the
        wire form could not tell it from a shared one)."""
        shared: dict[str, dict[int, str]] = {}
        for w in self.workers:
            if w.topology not in shared:
                shared[w.topology] = w.placement
        for w in self.workers:
            own, common = w.placement, shared.get(w.topology)
            if common is not None and (not own or not common):
                del shared[w.topology]
        if not shared:
            return self
        workers = [
            replace(w, placement={}) if w.topology in shared and _same(w.placement, shared[w.topology]) else w
            for w in self.workers
        ]
        return replace(self, workers=workers, placements={**self.placements, **shared})

    def from_wire(self) -> SupervisorAssignment:
        """Each worker with its topology's full placement map (see above)."""
        if not self.placements:
            return self
        workers = [
            replace(w, placement=self.placements[w.topology])
            if not w.placement and w.topology in self.placements
            else w
            for w in self.workers
        ]
        return replace(self, workers=workers, placements={})


def _same(a: dict[int, str], b: dict[int, str]) -> bool:
    return a is b or a == b  # Nimbus hands every worker of a topology the same map: no comparison


# -- worker <-> supervisor ------------------------------------------------------------------


@message
class WorkerLaunch:
    """Everything a worker process needs to start, written to a file by its supervisor."""

    topology: str
    node: str
    host: str
    port: int
    spec: dict[str, Any]
    bundle_dir: str
    supervisor_endpoint: str
    clock_hz: float
    assignment: WorkerAssignment
    keys_dir: str = ""  # the cluster keys folder ("" = no CURVE), see squall.security


@message
class WorkerUpdate:
    """A live change for a running worker: new placement of the topology, activation, and
    (live migration) a new set of local executors, paused spouts, states to restore."""

    placement: dict[int, str]
    active: bool
    assignment_version: int
    executors: list[int] | None = None  # None: the local executors do not change
    paused: bool = False
    states: dict[int, bytes] = field(default_factory=dict)


@message
class WorkerHeartbeat:
    port: int
    pid: int
    topology: str
    assignment_version: int
    metrics: WorkerMetrics
    bad_frames: int = 0
    paused: bool = False
    released: dict[int, bytes] = field(default_factory=dict)  # executor id -> snapshot, once per removal


# -- CLI -> nimbus --------------------------------------------------------------------------


@message
class SubmitTopology:
    rid: int
    name: str
    spec: dict[str, Any]
    bundle: bytes
    scheduler: str = "round_robin"
    workers: int | None = None
    conf: dict[str, Any] = field(default_factory=dict)


@message
class KillTopology:
    rid: int
    name: str
    wait_s: float | None = None


@message
class SetActive:
    rid: int
    name: str
    active: bool


@message
class RebalanceTopology:
    rid: int
    name: str
    wait_s: float | None = None
    workers: int | None = None
    parallelism: dict[str, int] = field(default_factory=dict)
    scheduler: str | None = None


@message
class ListTopologies:
    rid: int


@message
class GetAssignment:
    rid: int
    name: str


@message
class GetTopology:
    """Spec and code bundle of a topology (supervisors fetch it before starting workers)."""

    rid: int
    name: str


@message
class GetSnapshot:
    """The snapshot of ``executor`` of ``topology`` that an assignment names by ``digest``
    (``WorkerAssignment.state_refs``). Nimbus answers with ``Reply``: ``data`` is
    ``{"topology", "executor", "digest", "state": bytes}``, or ``ok`` False with an error
    naming the executor and why (no migration of the topology, or not in ACQUIRE, or no
    snapshot with that digest held). One snapshot per reply, so a board's control link
    carries heartbeat acks between two of them."""

    rid: int
    topology: str
    digest: str
    executor: int = field(metadata=NON_NEGATIVE)


@message
class GetCluster:
    rid: int


@message
class Reply:
    rid: int
    ok: bool
    error: str = ""
    data: Any = None


@message
class NotLeader:
    """The answer of a Nimbus that is not the leader to a request (``rid``): ask ``leader``
    ("host:port"; "" while no leader is known: try the next address). Only replicas that
    follow send it; a client follows it to the leader."""

    rid: int
    leader: str = ""
    term: int = field(default=0, metadata=NON_NEGATIVE)


@message
class GetNimbusStatus:
    """Who leads, in which term, and every replica's address, role and pid."""

    rid: int


# -- CLI -> nimbus: rebalancing ---------------------------------------------------------------


@message
class GetEvents:
    """The rebalance events of a topology (applied and declined), oldest first."""

    rid: int
    name: str


@message
class GetStats:
    """A topology's measured figures over its metrics window (traffic split, latency, counts)."""

    rid: int
    name: str
