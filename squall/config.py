"""Configuration keys that more than one daemon reads, and the defaults a worker applies.

This module is the one home of a key's spelling: Nimbus writes or bounds these keys
(``squall.nimbus.config`` re-exports them beside its own) and the supervisor and its
workers read them. It imports nothing, so a worker pays nothing for it.

Guarantee: a worker given a conf without one of the keys below behaves as if it held the
``DEFAULT_...`` value named beside the key; Nimbus's defaults for the same keys are these
values (it does not keep a second copy).
"""

from __future__ import annotations

# -- set by Nimbus in every topology's conf (resolved at submit) ----------------------------
NAME = "topology.name"
WORKERS = "topology.workers"
ACKERS = "topology.acker.executors"  # default: one per worker, as in Storm
SPEC_DIGEST = "topology.spec.digest"  # sha256 of the spec: a worker of another spec is replaced
BUNDLE_DIGEST = "topology.bundle.digest"
SCHEDULER = "topology.scheduler"
SCHEDULER_PARAMS = "topology.scheduler.params"

# -- read by the workers' runtime ------------------------------------------------------------
MESSAGE_TIMEOUT = "topology.message.timeout.secs"
DEFAULT_MESSAGE_TIMEOUT_S = 30.0  # Storm's default: a tuple tree not acked by then fails
MAX_SPOUT_PENDING = "topology.max.spout.pending"
DEFAULT_MAX_SPOUT_PENDING = 1000  # per spout task: bounds a worker's memory when a downstream bolt is slow
TICK_FREQ = "topology.tick.tuple.freq.secs"  # in a component's config: its tick tuple period
SPOUT_BATCH = "squall.spout.batch"
DEFAULT_SPOUT_BATCH = 64  # next_tuple() calls per spout task and round, and tuples they emit
BOLT_BATCH = "squall.bolt.batch"
DEFAULT_BOLT_BATCH = 1_000  # inbox items a bolt executor handles per round
BACKPRESSURE_HIGH = "squall.backpressure.high"
DEFAULT_BACKPRESSURE_HIGH = 10_000  # queued items at which the spouts of a worker pause
WORKER_HEARTBEAT = "squall.worker.heartbeat.secs"
DEFAULT_WORKER_HEARTBEAT_S = 1.0
# How long a worker that expects a frame (a local tree in flight, or frames arriving closer
# together than this) polls its sockets without blocking before it sleeps in ``select``.
WORKER_SPIN_US = "squall.worker.spin.us"
DEFAULT_WORKER_SPIN_US = 0.0
MAX_WORKER_SPIN_US = 10_000.0  # 10 ms: past a paced round trip's tail, a core's share is all it buys

# -- the worker's transfer (the data plane); defaults live with the transfer, but for the one
# Nimbus reads too (the latency model prices the batching wait) -----------------------------
TRANSFER_HWM = "squall.transfer.hwm"
TRANSFER_BATCH_SIZE = "squall.transfer.batch.size"
TRANSFER_FLUSH_MS = "squall.transfer.flush.ms"
DEFAULT_TRANSFER_FLUSH_MS = 1.0  # the longest an item waits in a batch before it is sent
TRANSFER_BACKLOG_FRAMES = "squall.transfer.backlog.frames"
TRANSFER_HOLD_ITEMS = "squall.transfer.hold.items"
