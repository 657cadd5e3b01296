"""Nimbus configuration keys, their defaults, and the resolution of a topology's conf.

Guarantees: :func:`resolve_topology_conf` is pure; the conf it returns holds an explicit
``topology.workers`` (int >= 1) and ``topology.acker.executors`` (int >= 0), so every
worker computes the same ``executors_with_ackers(n)``, and a ``topology.max.spout.pending``
(``DEFAULT_MAX_SPOUT_PENDING`` unless set); it raises :class:`ConfError` with a message
naming the key at fault and its allowed range — every numeric key in :data:`BOUNDS` has
an upper bound too, because one absurd value (a metrics window of 1e12 s) makes every rate
computation slower forever — and never returns a conf that cannot be stored as JSON.
:func:`check_nimbus_conf` does the same for Nimbus's own ``--set`` entries.
"""

from __future__ import annotations

import json
import math
from typing import Any

from squall.bundle import MAX_BUNDLE_BYTES

# Keys the workers read too are spelled once, in squall.config, and re-exported here.
from squall.config import (  # noqa: F401  (re-exported: nimbus code reads them as C.<KEY>)
    ACKERS,
    BACKPRESSURE_HIGH,
    BOLT_BATCH,
    BUNDLE_DIGEST,
    DEFAULT_MAX_SPOUT_PENDING,
    DEFAULT_MESSAGE_TIMEOUT_S,
    MAX_SPOUT_PENDING,
    MAX_WORKER_SPIN_US,
    MESSAGE_TIMEOUT,
    NAME,
    SCHEDULER,
    SCHEDULER_PARAMS,
    SPEC_DIGEST,
    SPOUT_BATCH,
    TICK_FREQ,
    TRANSFER_BACKLOG_FRAMES,
    TRANSFER_BATCH_SIZE,
    TRANSFER_FLUSH_MS,
    TRANSFER_HOLD_ITEMS,
    TRANSFER_HWM,
    WORKER_HEARTBEAT,
    WORKER_SPIN_US,
    WORKERS,
)
from squall.control_mark import DEFAULT_CONTROL_DSCP, NIMBUS_CONTROL_DSCP

SUPERVISOR_TIMEOUT = "nimbus.supervisor.timeout.secs"
HEARTBEAT = "nimbus.heartbeat.secs"
BUNDLE_MAX = "nimbus.bundle.max.bytes"
METRICS_WINDOW = "topology.metrics.window.secs"
# Rebalancing of running topologies (docs/rebalancing.md).
RESCHEDULE_INTERVAL = "topology.reschedule.interval.secs"
RESCHEDULE_TIMEOUT = "topology.reschedule.timeout.secs"
TRAFFIC_IMPROVEMENT = "topology.traffic.improvement"
RESCHEDULE_BACKOFF = "topology.reschedule.backoff.secs"
# Probation (nimbus/probation.py): how much worse, in percent, before a change is rolled back.
PROBATION_AVG_WORSE = "topology.probation.avg.worse"
PROBATION_P99_WORSE = "topology.probation.p99.worse"
MIGRATION_DRAIN = "topology.migration.drain.secs"
MIGRATION_RELEASE = "topology.migration.release.secs"
MIGRATION_ACQUIRE = "topology.migration.acquire.secs"
CLUSTER = "nimbus.cluster"
RETENTION = "nimbus.supervisor.retention.secs"
GC_FULL = "nimbus.gc.full.secs"  # see nimbus/full_collections.py; 0: CPython's own rule
CONTROL_DSCP = NIMBUS_CONTROL_DSCP  # the mark on the supervisors' socket (squall/control_mark.py)

NIMBUS_DEFAULTS: dict[str, Any] = {
    SUPERVISOR_TIMEOUT: 5.0,  # boards: a supervisor is presumed dead after 5 s of silence
    HEARTBEAT: 1.0,  # what RegisterReply tells supervisors
    BUNDLE_MAX: MAX_BUNDLE_BYTES,  # the one bundle limit: what the client builds and every board unpacks
    MESSAGE_TIMEOUT: DEFAULT_MESSAGE_TIMEOUT_S,  # also the default wait of kill and rebalance, like Storm
    METRICS_WINDOW: 30.0,
    RESCHEDULE_INTERVAL: 10.0,  # how often the online loop asks for a proposal
    RESCHEDULE_TIMEOUT: 60.0,  # at least this long between two applied changes
    TRAFFIC_IMPROVEMENT: 10.0,  # percent of inter-node traffic a proposal must save
    RESCHEDULE_BACKOFF: 120.0,  # the loop's pause after a roll-back (doubling while they repeat)
    PROBATION_AVG_WORSE: 10.0,  # percent: a change that raised the average latency more is rolled back
    PROBATION_P99_WORSE: 25.0,  # percent, the same for the p99 (judged from 1,000 latencies up)
    MIGRATION_DRAIN: 5.0,  # PAUSE: longest wait for in-flight tuples to land
    MIGRATION_RELEASE: 5.0,  # RELEASE: longest wait for the moved executors' snapshots
    MIGRATION_ACQUIRE: 30.0,  # ACQUIRE: longest wait for every new worker to run
    CLUSTER: "squall",  # supervisors registering for another cluster name are refused
    RETENTION: 3600.0,  # a board silent this long is forgotten (its row and series go)
    GC_FULL: 60.0,  # the loop's full garbage collection, this often (0: CPython decides)
    CONTROL_DSCP: DEFAULT_CONTROL_DSCP,  # CS5: WMM lets heartbeats past a saturated Wi-Fi link's data (0: unmarked)
}

DAY = 86400.0
# key -> (lowest, highest, integer?): every numeric setting has both ends.
BOUNDS: dict[str, tuple[float, float, bool]] = {
    MESSAGE_TIMEOUT: (0.001, DAY, False),
    METRICS_WINDOW: (1.0, 3600.0, False),
    RESCHEDULE_INTERVAL: (0.0, 1e7, False),  # ~4 months: "practically never" is a use
    RESCHEDULE_TIMEOUT: (0.0, 1e7, False),
    TRAFFIC_IMPROVEMENT: (0.0, 100.0, False),
    RESCHEDULE_BACKOFF: (0.0, 1e7, False),
    PROBATION_AVG_WORSE: (0.0, 1e6, False),  # 1e6 percent: "practically never judged"
    PROBATION_P99_WORSE: (0.0, 1e6, False),
    MIGRATION_DRAIN: (0.0, 3600.0, False),
    MIGRATION_RELEASE: (0.0, 3600.0, False),
    MIGRATION_ACQUIRE: (0.0, 3600.0, False),
    MAX_SPOUT_PENDING: (1, 1_000_000, True),
    TICK_FREQ: (0.001, DAY, False),
    WORKER_HEARTBEAT: (0.05, 60.0, False),
    WORKER_SPIN_US: (0.0, MAX_WORKER_SPIN_US, False),
    TRANSFER_HWM: (1, 1_000_000, True),
    TRANSFER_BATCH_SIZE: (1, 65536, True),
    TRANSFER_FLUSH_MS: (0.0, 10_000.0, False),
    TRANSFER_BACKLOG_FRAMES: (1, 100_000, True),
    TRANSFER_HOLD_ITEMS: (0, 10_000_000, True),
    SPOUT_BATCH: (1, 100_000, True),
    BOLT_BATCH: (1, 1_000_000, True),
    BACKPRESSURE_HIGH: (1, 100_000_000, True),
}
NIMBUS_BOUNDS: dict[str, tuple[float, float, bool]] = {
    SUPERVISOR_TIMEOUT: (0.5, 3600.0, False),
    HEARTBEAT: (0.05, 60.0, False),
    BUNDLE_MAX: (1, MAX_BUNDLE_BYTES, True),
    RETENTION: (10.0, 30 * DAY, False),
    GC_FULL: (0.0, DAY, False),
    CONTROL_DSCP: (0, 63, True),
    **BOUNDS,  # topology keys given to Nimbus are defaults for every topology
}


MAX_WORKERS = 4096  # per topology; also bounds the default acker count (= workers)


class ConfError(ValueError):
    """A conf value that cannot be used; the message names the key."""


def number(conf: dict[str, Any], key: str, default: float, minimum: float = 0.0) -> float:
    """``conf[key]`` as a finite float >= minimum, else ``default``."""
    value = conf.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return float(value) if value >= minimum else default


def resolve_topology_conf(
    spec_config: dict[str, Any], overrides: dict[str, Any], workers: int | None
) -> dict[str, Any]:
    """spec.config, overridden by ``overrides``; ``workers`` (when given) wins over both.

    ``topology.acker.executors`` defaults to the worker count, as in Storm.
    """
    conf = dict(spec_config)
    conf.update(overrides)
    chosen = workers if workers is not None else conf.get(WORKERS, 1)
    if chosen is None:
        chosen = 1
    if isinstance(chosen, bool) or not isinstance(chosen, int) or not 1 <= chosen <= MAX_WORKERS:
        raise ConfError(f"{WORKERS} must be an integer from 1 to {MAX_WORKERS}, got {chosen!r}")
    conf[WORKERS] = chosen
    ackers = conf.get(ACKERS)
    if ackers is None:
        ackers = chosen
    if isinstance(ackers, bool) or not isinstance(ackers, int) or not 0 <= ackers <= MAX_WORKERS:
        raise ConfError(f"{ACKERS} must be an integer from 0 to {MAX_WORKERS}, got {ackers!r}")
    conf[ACKERS] = ackers
    conf.setdefault(MAX_SPOUT_PENDING, DEFAULT_MAX_SPOUT_PENDING)
    check_bounds(conf, BOUNDS)
    params = conf.get(SCHEDULER_PARAMS, {})
    if not isinstance(params, dict):
        raise ConfError(f"{SCHEDULER_PARAMS} must be a mapping, got {type(params).__name__}")
    for key, value in conf.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise ConfError(f"conf value of {key!r} is not JSON-serialisable ({type(value).__name__})") from None
    return conf


def check_bounds(conf: dict[str, Any], bounds: dict[str, tuple[float, float, bool]]) -> None:
    """Every key of ``bounds`` present in ``conf`` holds a number in its range (an integer for
    integer keys; None means "unset" only for ``topology.max.spout.pending``, Storm's unlimited),
    else ConfError naming the key and the range."""
    for key, (low, high, integer) in bounds.items():
        if key not in conf:
            continue
        value = conf[key]
        kind = "an integer" if integer else "a number"
        if value is None and key == MAX_SPOUT_PENDING:
            raise ConfError(
                f"{key} must be {kind} from {low:g} to {high:g}: unlimited pending tuples let one slow "
                "bolt fill a worker's memory"
            )
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type or not math.isfinite(value) or not low <= value <= high:
            raise ConfError(f"{key} must be {kind} from {low:g} to {high:g}, got {value!r:.60}")


def check_nimbus_conf(conf: dict[str, Any]) -> None:
    """Nimbus's own settings (``squall nimbus --set``), bounded like a topology's."""
    check_bounds(conf, NIMBUS_BOUNDS)
