"""What the transfer layer measures, without sockets: bytes and frames sent, the CPU meter
(nested measurements counted once; a flush from inside a sink is transfer CPU, and the
executor that triggered it leaves it out of its own), the outbox's next flush instant, and
the CPU of the process's other threads."""

from __future__ import annotations

import threading
import time

from squall.supervisor.runtime.stats import CpuMeter
from squall.supervisor.transfer import BACKLOG_RETRY_S
from squall.supervisor.worker_metrics import OtherThreadsCpu
from squall.topology.component import Tuple
from tests.worker.test_transfer import MIDDLE, SPOUT, Clock, Wire, outbox

FIELDS = {"n": 0, "ts": 1}


def burn(seconds: float) -> None:
    deadline = time.thread_time() + seconds
    while time.thread_time() < deadline:
        pass


def test_the_meter_counts_nested_measurements_once():
    meter = CpuMeter()
    meter.start()
    burn(0.02)
    meter.start()
    burn(0.02)
    meter.stop()
    assert meter.cpu_s == 0.0, "nothing counted until the outermost stop"
    meter.stop()
    assert 0.035 <= meter.cpu_s <= 0.1


def test_frames_bytes_and_cpu_of_sending_are_counted():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock)
    sink = box.put
    for i in range(3):
        sink((MIDDLE, Tuple("spout", "default", SPOUT, [i, 1.5], FIELDS)))
    box.flush(idle=True)
    assert box.sent_frames == 1 and box.sent_bytes == sum(len(f) for _, f in wire.frames) > 0
    assert box.meter.cpu_s > 0


def test_a_batch_flushed_from_inside_a_sink_is_metered_by_the_shared_meter():
    wire, clock = Wire(), Clock()
    meter = CpuMeter()
    box = outbox(wire, clock, batch_size=2, meter=meter)
    sink = box.put
    sink((MIDDLE, Tuple("spout", "default", SPOUT, [1, 1.5], FIELDS)))
    assert meter.cpu_s == 0.0
    sink((MIDDLE, Tuple("spout", "default", SPOUT, [2, 1.5], FIELDS)))  # fills the batch: sent now
    assert len(wire.frames) == 1 and meter.cpu_s > 0


def test_next_flush_is_the_oldest_item_plus_the_delay_or_soon_while_refused():
    wire, clock = Wire(), Clock()
    box = outbox(wire, clock, flush_ms=5.0)
    assert box.next_due(clock()) is None, "nothing buffered: nothing due"
    box.put((MIDDLE, Tuple("spout", "default", SPOUT, [1, 1.5], FIELDS)))
    clock.now += 0.002
    box.put((MIDDLE, Tuple("spout", "default", SPOUT, [2, 1.5], FIELDS)))
    assert box.next_due(clock()) == 100.0 + 0.005
    wire.accept = False
    box.flush(idle=True)
    assert box.congested() and box.next_due(clock()) == clock() + BACKLOG_RETRY_S
    wire.accept = True
    box.flush()
    assert box.next_due(clock()) is None and box.sent_frames == 1


def test_other_threads_cpu_grows_with_their_work_and_never_goes_back():
    reader = OtherThreadsCpu(threading.get_native_id())
    before = reader.read()
    worker = threading.Thread(target=burn, args=(0.1,))
    worker.start()
    worker.join()
    after = reader.read()  # the thread has ended: what it used when last seen is kept
    assert after >= before
    busy = threading.Event()
    stop = threading.Event()

    def spin() -> None:
        busy.set()
        while not stop.is_set():
            pass

    t = threading.Thread(target=spin)
    t.start()
    busy.wait()
    deadline = time.monotonic() + 20
    while reader.read() - after < 0.02:  # a spinning thread's CPU is seen (however loaded the machine)
        assert time.monotonic() < deadline, "another thread's CPU never showed"
        time.sleep(0.01)
    stop.set()
    t.join()
    ended = reader.read()
    assert ended >= after + 0.02, "and kept after it ends"
    burn(0.05)
    assert reader.read() - ended < 0.02, "the loop thread's own CPU is not counted"
