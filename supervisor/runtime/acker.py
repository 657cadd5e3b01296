"""The XOR acker (Storm's algorithm): tracks each tuple tree with one 64-bit value.

Every edge of a tree gets a random 64-bit id. The spout reports the XOR of the edges it
emitted (ACK_INIT); each bolt, when it acks a tuple, reports the tuple's edge XOR the edges it
anchored on it (ACK_ACK). Each edge thus enters the value twice and the value is zero exactly
when every tuple of the tree was acked — in O(1) memory per tree whatever its size.

Messages may arrive in any order (an ack can beat the init across workers); a tree completes
only once its init has arrived and its value is zero. A failure is reported to the spout as
soon as its task is known. Entries older than the message timeout are forgotten (the spout
times them out itself), in rotating buckets so no entry is scanned twice.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from squall.supervisor.runtime.batches import requeue_rest, take_batch
from squall.supervisor.runtime.messages import (
    ACK_ACK,
    ACK_FAIL,
    ACK_INIT,
    ACKER_COMPONENT,
    TREE_COMPLETE,
    TREE_FAILED,
)
from squall.supervisor.runtime.stats import BusyTimer, ExecutorStats
from squall.topology.spec import ExecutorKind, ExecutorSpec

if TYPE_CHECKING:
    from squall.supervisor.runtime.engine import Wiring

_NO_SPOUT = -1


class AckerExecutor:
    kind = ExecutorKind.ACKER

    def __init__(self, spec: ExecutorSpec, wiring: Wiring, timeout_s: float) -> None:
        self.spec = spec
        self.component = ACKER_COMPONENT
        self.wiring = wiring
        self.inbox: deque = deque()
        self.stats = ExecutorStats(ACKER_COMPONENT)
        # root -> [xor value, spout task or _NO_SPOUT, failed]
        self.current: dict[int, list] = {}
        self.previous: dict[int, list] = {}
        self.rotate_every_s = max(timeout_s, 0.001)
        self.rotated_at = wiring.clock()

    def initialize(self) -> None:
        pass

    def drain(self, limit: int) -> int:
        """Apply up to ``limit`` queued messages; notify spouts of trees that completed or
        failed. The lookups and the notification are inlined: this loop runs once per
        message of every tree. Messages queued while it runs wait for the next call."""
        inbox = self.inbox
        if not inbox:
            return 0
        busy = BusyTimer(self.wiring.transfer_meter)  # batches flushed by a notice are transfer CPU
        items = take_batch(inbox, limit)
        current = self.current
        previous = self.previous
        sinks = self.wiring.sinks
        acked = failed = 0
        # Notices sent, counted into sent_control by runs of one spout task (trees complete
        # in about the order their spout emitted them, a batch per task): a compare per
        # notice instead of a defaultdict update.
        notified_task = _NO_SPOUT
        notified = 0
        item = None
        try:
            for item in items:
                msg = item[1]
                kind = msg[0]
                root = msg[1]
                e = current.get(root)
                if e is None:
                    e = previous.get(root)
                if kind == ACK_ACK:
                    if e is None:
                        current[root] = [msg[2], _NO_SPOUT, False]
                        continue
                    e[0] ^= msg[2]
                elif kind == ACK_INIT:
                    if e is None:
                        e = current[root] = [msg[2], msg[3], False]
                    else:
                        e[0] ^= msg[2]
                        e[1] = msg[3]
                elif kind == ACK_FAIL:
                    if e is None:
                        current[root] = [0, _NO_SPOUT, True]
                        continue
                    e[2] = True
                else:
                    continue
                spout_task = e[1]
                if spout_task == _NO_SPOUT:
                    continue
                if e[2]:
                    outcome = TREE_FAILED
                    failed += 1
                elif e[0] == 0:
                    outcome = TREE_COMPLETE
                    acked += 1
                else:
                    continue
                if current.pop(root, None) is None:
                    previous.pop(root, None)
                if spout_task == notified_task:
                    notified += 1
                else:
                    if notified:
                        self.stats.sent_control[notified_task] += notified
                    notified_task = spout_task
                    notified = 1
                sinks[spout_task]((spout_task, (outcome, root)))
        except BaseException:  # a sink that raised: what was not applied stays queued
            requeue_rest(inbox, items, item)
            raise
        finally:
            stats = self.stats
            if notified:
                stats.sent_control[notified_task] += notified
            stats.acked += acked
            stats.failed += failed
        n = len(items)
        self.stats.executed += n
        self.stats.busy_s += busy.busy_s()
        return n

    def next_rotation(self) -> float | None:
        """When ``rotate`` next has something to forget; None while no entry is kept."""
        return self.rotated_at + self.rotate_every_s if self.current or self.previous else None

    def rotate(self, now: float) -> None:
        """Forget trees older than two rotation periods (the spout has timed them out)."""
        if now - self.rotated_at >= self.rotate_every_s:
            self.previous = self.current
            self.current = {}
            self.rotated_at = now
