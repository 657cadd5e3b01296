"""The latency issue's checks on a real local cluster (processes, ZeroMQ on loopback):

* the load Nimbus attributes to executors (its honest load) sums to the workers' process
  CPU as the operating system measures it, within 15%;
* a requested rebalance with the ``latency`` scheduler is applied with a prediction,
  judged by its probation (measured before and after) and loses nothing.
"""

from __future__ import annotations

import textwrap
import time

import psutil
import pytest

from squall.experiments.demo import read_ledgers
from tests.helpers import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TOPOLOGY = textwrap.dedent('''
    """The reference chain, as a test topology."""
    from squall.experiments.reference import chain_topology

    Chain = chain_topology(stages=3, replication=2, work=2000, name="lat")
''')
WINDOW = 6.0


@pytest.fixture()
def chain(tmp_path):
    from squall.localcluster import LocalCluster

    path = tmp_path / "chain_topology.py"
    path.write_text(TOPOLOGY)
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    with LocalCluster(supervisors=3, slots=2, data_dir=tmp_path / "cluster") as c:
        conf = {
            "chain.rate": 300,
            "topology.metrics.window.secs": WINDOW,
            "topology.max.spout.pending": 500,
            "topology.message.timeout.secs": 10,
            "chain.ledger.dir": str(ledger),
        }
        c.ledger = ledger
        c.submit(str(path), name="lat", workers=3, scheduler="round_robin", conf=conf)
        yield c


def _process_cpu(pids: dict) -> float:
    total = 0.0
    for pid in pids.values():
        t = psutil.Process(pid).cpu_times()
        total += t.user + t.system
    return total


def test_attributed_load_sums_to_the_workers_process_cpu(chain):
    with chain.client(timeout_s=10) as client:
        eventually(lambda: len(chain.worker_pids()) == 3, 60, what="three workers running")
        time.sleep(WINDOW + 2)  # a full window of samples under load
        pids = chain.worker_pids()
        # The OS's figure over a window, and Nimbus's over (nearly) the same one.
        cpu0, t0 = _process_cpu(pids), time.monotonic()
        time.sleep(WINDOW)
        measured_cores = (_process_cpu(pids) - cpu0) / (time.monotonic() - t0)
        model = client.stats("lat")["model"]
    workload, nodes = model["workload"], model["nodes"]
    clock = nodes[0]["board"]["clock_hz"]
    attributed_cores = sum(workload["load_hz"]) / clock
    print(f"attributed {attributed_cores:.4f} cores, measured by the OS {measured_cores:.4f} cores")
    assert measured_cores > 0.02, "the chain puts the workers under load"
    assert attributed_cores == pytest.approx(measured_cores, rel=0.15)
    # Acker items are in the traffic matrix: some rows end at an acker executor.
    ackers = set(workload["profile"]["ackers"])
    assert ackers and any(dst in ackers for _src, dst, _rate in workload["traffic"])


def test_a_latency_rebalance_is_predicted_judged_and_loses_nothing(chain):
    with chain.client(timeout_s=10) as client:
        eventually(lambda: len(chain.worker_pids()) == 3, 60, what="three workers running")
        time.sleep(WINDOW + 2)
        client.rebalance("lat", scheduler="latency")

        def judged():
            for event in client.events("lat"):
                if event["trigger"] == "requested" and "probation" in event:
                    return event
            return None

        event = eventually(judged, 90, 0.5, what="the probation's verdict")
        assert event["decision"] in ("applied", "rolled_back")
        assert event["predicted"]["proposed"]["latency_ms"] > 0
        assert event["measured_before"]["count"] > 0 and event["measured_after"]["count"] > 0
        if event["decision"] == "rolled_back":
            eventually(
                lambda: any(e.get("rolls_back") == event["id"] and e.get("done_at") for e in client.events("lat")),
                60,
                0.5,
                what="the move back",
            )
        client.set_active("lat", False)
        # The spouts' own ledgers: every tuple emitted was acked (replays after a failure
        # or timeout would show in "replayed").
        totals = eventually(
            lambda: (lambda t: t if t["spouts"] and t["active"] == 0 and t["in_flight"] == 0 else None)(
                read_ledgers(chain.ledger)
            ),
            40,
            0.5,
            what="every tree finished",
        )
        assert totals["emitted"] > 0 and totals["emitted"] == totals["acked"]
