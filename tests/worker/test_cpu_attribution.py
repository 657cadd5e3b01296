"""Where a worker's CPU goes, on two real worker processes running the reference chain under
load with acking on: the executors' CPU plus the data plane's (encode+send, receive+decode)
never exceed the process's CPU, every counter grows, and the attributed shares are printed
(``pytest -s``) for the record. Control items (acker traffic) are counted per destination
executor, exactly one per init/ack/fail sent and per tree outcome notified."""

from __future__ import annotations

from pathlib import Path

import pytest

from squall.experiments.reference import chain_topology
from squall.messages import WorkerMetrics
from squall.ports import free_port
from squall.topology.spec import ACKER_COMPONENT
from tests.worker.worker_helpers import FakeSupervisor, Processes, by_executor, write_launch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

RATE = 400  # tuples/s per spout task (2 tasks)
WORK = 1000  # busy-loop iterations per tuple per bolt
# process_time and thread_time tick at the scheduler's granularity; a few ms per window.
TOLERANCE_S = 0.03


@pytest.fixture
def cluster(tmp_path: Path):
    sup = FakeSupervisor()
    procs = Processes(tmp_path)
    yield tmp_path, sup, procs
    procs.close()
    sup.close()


def test_executors_and_transfer_account_for_the_process_cpu_and_acker_edges_are_counted(cluster):
    tmp, sup, procs = cluster
    chain = chain_topology(stages=3, replication=2, work=WORK, rate=RATE, name="attribution")
    executors = chain.spec.executors_with_ackers(2)
    ports = [free_port(), free_port()]
    # Alternate executors between the workers so every stage sends across.
    owner = {e.id: ports[i % 2] for i, e in enumerate(executors)}
    placement = {eid: f"127.0.0.1:{port}" for eid, port in owner.items()}
    conf = {"topology.acker.executors": 2, "squall.worker.heartbeat.secs": 0.25}
    for port in ports:
        mine = [eid for eid, p in owner.items() if p == port]
        procs.worker(write_launch(tmp / f"w{port}.launch", chain.spec, port, mine, placement, sup.endpoint, tmp, conf))
    spouts = [e.id for e in executors if e.component == "spout"]
    ackers = {e.id for e in executors if e.component == ACKER_COMPONENT}

    def acked() -> int:
        return sum(by_executor(sup.last(owner[s]))[s].acked for s in spouts if sup.last(owner[s]))

    sup.wait_for(lambda: all(sup.last(p) for p in ports) and acked() >= 300, 30, "trees completing (warm-up)")
    before = {p: sup.last(p).metrics for p in ports}
    sup.wait_for(lambda: acked() >= 300 + 2 * RATE * 3, 40, "3 s of load")
    after = {p: sup.last(p).metrics for p in ports}

    for port in ports:
        b, a = before[port], after[port]
        d_process = a.process_cpu_s - b.process_cpu_s
        d_executors = executor_cpu(a) - executor_cpu(b)
        d_transfer = a.transfer_cpu_s - b.transfer_cpu_s
        overhead = d_process - d_executors - d_transfer
        print(
            f"\nworker {port}: process {d_process:.3f} s CPU = executors {d_executors:.3f} "
            f"({d_executors / d_process:.0%}) + transfer {d_transfer:.3f} ({d_transfer / d_process:.0%}) "
            f"+ overhead {overhead:.3f} ({overhead / d_process:.0%}); "
            f"frames out/in {a.frames_sent - b.frames_sent}/{a.frames_received - b.frames_received}, "
            f"bytes out/in {a.bytes_sent - b.bytes_sent}/{a.bytes_received - b.bytes_received}"
        )
        assert d_process >= d_executors + d_transfer - TOLERANCE_S, "more attributed than the process used"
        assert d_executors > 0 and d_transfer > 0
        assert a.frames_sent > b.frames_sent and a.frames_received > b.frames_received
        assert a.bytes_sent > b.bytes_sent and a.bytes_received > b.bytes_received
        # The work dominates: executors plus transfer are most of the process's CPU.
        assert d_executors + d_transfer >= 0.5 * d_process

    # Acker edges: per executor, one control item per init (spouts: every tracked emit), per
    # ack or fail (bolts: one root per tuple here), per notified outcome (ackers).
    final = {eid: by_executor(sup.last(owner[eid]))[eid] for eid in owner}
    for eid, em in final.items():
        sent = sum(em.sent_control.values())
        if eid in ackers:
            assert set(em.sent_control) <= set(spouts)
            assert sent == em.acked + em.failed and sent > 0
        else:
            assert set(em.sent_control) <= ackers, f"executor {eid} sent control items to a non-acker"
            expected = em.emitted if eid in spouts else em.acked + em.failed
            assert sent == expected and sent > 0, f"executor {eid} ({em.component})"
    for s in spouts:  # each spout starts its trees on the acker in its own worker (one per worker here)
        assert set(final[s].sent_control) == {a for a in ackers if owner[a] == owner[s]}


def executor_cpu(m: WorkerMetrics) -> float:
    return sum(e.cpu_s for e in m.executors)
