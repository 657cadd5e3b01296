"""The REST API against a real local cluster: shapes, status codes, the key, and POSTs that
reach the state machine (deactivate, activate, rebalance, kill)."""

from __future__ import annotations

import urllib.request

import pytest

from tests.helpers import WORDCOUNT, eventually
from tests.ui.ui_helpers import KEY, call

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# Storm's UI fields of a component row: those every component has, then each kind's own.
STORM_COMPONENT = {"executors", "tasks", "emitted", "transferred", "acked", "failed", "lastError"}
STORM_SPOUT = STORM_COMPONENT | {"spoutId", "encodedSpoutId", "completeLatency"}
STORM_BOLT = STORM_COMPONENT | {
    "boltId",
    "encodedBoltId",
    "executed",
    "capacity",
    "executeLatency",
    "processLatency",
}


def test_cluster_supervisor_and_topology_summaries(ui_cluster):
    base = ui_cluster.base
    status, cluster = call(base, "/api/v1/cluster/summary")
    assert status == 200
    assert {
        "stormVersion",
        "supervisors",
        "topologies",
        "slotsTotal",
        "slotsUsed",
        "slotsFree",
        "executorsTotal",
        "tasksTotal",
        "nimbusUptime",
    } <= cluster.keys()
    assert (cluster["supervisors"], cluster["slotsTotal"], cluster["topologies"]) == (3, 9, 1)
    assert cluster["slotsUsed"] == 3 and cluster["slotsFree"] == 6

    status, sups = call(base, "/api/v1/supervisor/summary")
    assert status == 200
    assert [s["id"] for s in sups["supervisors"]] == ui_cluster.node_ids
    for s in sups["supervisors"]:
        assert {
            "id",
            "host",
            "uptime",
            "slotsTotal",
            "slotsUsed",
            "totalMem",
            "totalCpu",
            "usedCpu",
            "version",
        } <= s.keys()
        assert s["alive"] and s["slotsTotal"] == 3 and len(s["slots"]) == 3 and s["capacityHz"] > 0
        assert sum(slot["topology"] == "wc" for slot in s["slots"]) == s["slotsUsed"]

    status, topos = call(base, "/api/v1/topology/summary")
    assert status == 200
    (row,) = topos["topologies"]
    assert row["id"] == row["name"] == "wc" and row["status"] == "ACTIVE"
    assert (row["workersTotal"], row["executorsTotal"], row["tasksTotal"]) == (3, 9, 9)


def test_topology_page_has_storm_fields_with_measured_values(ui_cluster):
    def measured():
        status, topo = call(ui_cluster.base, "/api/v1/topology/wc")
        assert status == 200
        measured = (
            float(topo["spouts"][0]["completeLatency"]) > 0
            and topo["spouts"][0]["acked"] > 0
            and all(b["executed"] > 0 for b in topo["bolts"])
        )
        return topo if measured else None

    topo = eventually(measured, timeout_s=30, what="measured latency and counts")
    assert [s["spoutId"] for s in topo["spouts"]] == ["sentences"]
    assert sorted(b["boltId"] for b in topo["bolts"]) == ["count", "split"]  # ackers only with ?sys=true
    for spout in topo["spouts"]:
        assert STORM_SPOUT <= spout.keys() and spout["emitted"] > 0 and spout["acked"] > 0
    for bolt in topo["bolts"]:
        assert STORM_BOLT <= bolt.keys() and bolt["executed"] > 0
        # Capacity is one executor thread's share of a core; execute latency is CPU ms per tuple
        # (wordcount's bolts take microseconds): wrong units would break either bound.
        assert 0 <= float(bolt["capacity"]) <= 1 and 0 <= float(bolt["executeLatency"]) < 50, bolt
    (stats,) = topo["topologyStats"]
    assert stats["window"] == ":all-time" and stats["emitted"] > 0
    assert len(topo["workers"]) == 3
    assert {w["supervisorId"] for w in topo["workers"]} == set(ui_cluster.node_ids)
    assert all(w["state"] == "running" and w["executorsTotal"] >= 1 for w in topo["workers"])
    assert topo["interNodeTuplesPerSecond"] > 0
    status, with_sys = call(ui_cluster.base, "/api/v1/topology/wc?sys=true")
    assert status == 200 and "__acker" in {b["boltId"] for b in with_sys["bolts"]}


def test_placement_traffic_history_and_events(ui_cluster):
    base = ui_cluster.base
    status, placement = call(base, "/api/v1/topology/wc/placement")
    assert status == 200 and len(placement["executors"]) == 9
    for e in placement["executors"]:
        assert e["node"] in ui_cluster.node_ids and e["worker"] == f"{e['node']}:{e['port']}"
    assert {c["id"] for c in placement["components"]} == {"sentences", "split", "count"}
    assert {(e["from"], e["to"], e["grouping"]) for e in placement["edges"]} == {
        ("sentences", "split", "shuffle"),
        ("split", "count", "fields"),
    }
    assert sorted(ex for w in placement["workers"] for ex in w["executors"]) == list(range(9))
    assert placement["layers"] == [["sentences"], ["split"], ["count"]] and placement["cycles"] == []

    status, traffic = call(base, "/api/v1/topology/wc/traffic")
    assert status == 200
    n = len(traffic["executors"])
    assert n == 9 and len(traffic["matrix"]) == n and all(len(row) == n for row in traffic["matrix"])
    ids = [e["id"] for e in traffic["executors"]]
    for src, dst, rate in traffic["pairs"]:
        assert traffic["matrix"][ids.index(src)][ids.index(dst)] == rate > 0
    assert traffic["total"] >= traffic["interWorker"] >= traffic["interNode"] > 0
    assert len(traffic["nodeMatrix"]) == len(traffic["nodes"])

    history = eventually(
        lambda: (h := call(base, "/api/v1/topology/wc/history")[1]) and len(h["samples"]) >= 3 and h,
        timeout_s=20,
        what="history samples",
    )
    assert {"t", "version", "interNode", "completeLatencyMs", "emittedPerS"} <= history["samples"][-1].keys()

    status, events = call(base, "/api/v1/topology/wc/events")
    assert status == 200 and events["source"] == "store"
    assert isinstance(events["events"], list) and isinstance(events["placementChanges"], list)


def test_a_rebalance_posted_through_the_api_is_served_as_an_event(ui_cluster):
    base = ui_cluster.base
    options = {"rebalanceOptions": {"scheduler": "online"}}
    status, body = call(base, "/api/v1/topology/wc/rebalance/0", "POST", options, key=KEY)
    assert status == 200, body

    def requested_event():
        events = call(base, "/api/v1/topology/wc/events")[1]["events"]
        return [e for e in events if e["trigger"] == "requested" and e.get("done_at")]

    (event, *_) = eventually(requested_event, timeout_s=60, what="the requested rebalance's event")
    assert event["decision"] == "applied", event
    # Spouts pause while live executors move; a change that moves nothing pauses nothing.
    assert event["paused_s"] > 0 if event["moved"] else event["paused_s"] == 0.0, event


@pytest.mark.parametrize("path", ["", "/placement", "/traffic", "/history", "/events"])
def test_unknown_topology_is_a_json_404(ui_cluster, path):
    status, body = call(ui_cluster.base, f"/api/v1/topology/nosuch{path}")
    assert status == 404 and body["status"] == 404 and "nosuch" in body["errorMessage"]


def test_unknown_paths_methods_and_bodies_are_json_errors(ui_cluster):
    base = ui_cluster.base
    assert call(base, "/api/v1/nothing")[0] == 404
    status, body = call(base, "/api/v1/topology/wc/activate")  # GET on a POST route
    assert status == 405 and "POST" in body["errorMessage"]
    assert call(base, "/api/v1/topology/wc/kill/0", method="POST", raw=b"{oops", key=KEY)[0] == 400
    assert call(base, "/api/v1/topology/wc/kill/soon", method="POST", key=KEY)[0] == 400
    bad = {"rebalanceOptions": {"executors": {"split": "many"}}}
    assert call(base, "/api/v1/topology/wc/rebalance/0", "POST", bad, key=KEY)[0] == 400
    too_many = {"rebalanceOptions": {"executors": {"split": 99}}}
    status, body = call(base, "/api/v1/topology/wc/rebalance/0", "POST", too_many, key=KEY)
    assert status == 400 and "split" in body["errorMessage"]  # refused by Nimbus itself
    status, body = call(base, "/api/v1/topology/nosuch/activate", "POST", key=KEY)
    assert status == 404 and body["error"] == "Not Found"
    assert "Traceback" not in str(body)


def test_posts_without_the_key_are_refused(ui_cluster):
    base = ui_cluster.base
    status, body = call(base, "/api/v1/topology/wc/deactivate", "POST")
    assert status == 401 and "X-Squall-Key" in body["errorMessage"]
    assert call(base, "/api/v1/topology/wc/kill/0", "POST", key="wrong")[0] == 403
    assert call(base, "/api/v1/topology/nosuch/kill/0", "POST")[0] == 401  # the key comes first
    assert call(base, "/api/v1/topology/summary")[1]["topologies"][0]["status"] == "ACTIVE"


def test_deactivate_then_activate(ui_cluster):
    base = ui_cluster.base
    status, body = call(base, "/api/v1/topology/wc/deactivate", "POST", key=KEY)
    assert status == 200
    assert (
        body
        == {"topologyOperation": "deactivate", "topologyId": "wc", "status": "success", "topology": body["topology"]}
        and body["topology"]["status"] == "INACTIVE"
    )
    assert call(base, "/api/v1/topology/wc")[1]["status"] == "INACTIVE"
    status, body = call(base, "/api/v1/topology/wc/activate", "POST", key=KEY)
    assert status == 200 and body["topology"]["status"] == "ACTIVE"
    assert call(base, "/api/v1/topology/summary")[1]["topologies"][0]["status"] == "ACTIVE"


def test_kill_removes_the_topology(ui_cluster):
    ui_cluster.submit(WORDCOUNT, name="victim", workers=1)
    base = ui_cluster.base
    assert call(base, "/api/v1/topology/victim")[0] == 200
    status, body = call(base, "/api/v1/topology/victim/kill/0", "POST", key=KEY)
    assert status == 200 and body["topologyOperation"] == "kill"
    eventually(lambda: call(base, "/api/v1/topology/victim")[0] == 404, timeout_s=10, what="victim gone")
    assert [t["id"] for t in call(base, "/api/v1/topology/summary")[1]["topologies"]] == ["wc"]


def test_metrics_and_the_page_share_the_port(ui_cluster):
    with urllib.request.urlopen(ui_cluster.base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    assert 'squall_topology_status{status="ACTIVE",topology="wc"} 1.0' in text
    with urllib.request.urlopen(ui_cluster.base + "/", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/html") and b"app.js" in r.read()
    for asset in ("/app.js", "/style.css"):
        with urllib.request.urlopen(ui_cluster.base + asset, timeout=10) as r:
            assert r.status == 200


def test_the_grafana_dashboard_uses_only_metrics_nimbus_serves(ui_cluster):
    import json
    import re
    from pathlib import Path

    dashboard = (Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json").read_text()
    json.loads(dashboard)
    used = set(re.findall(r"squall_[a-z_]+", dashboard))
    assert len(used) >= 10, used  # the dashboard's panels, found

    def all_served() -> bool:
        with urllib.request.urlopen(ui_cluster.base + "/metrics", timeout=10) as r:
            served = {
                line.split("{")[0].split(" ")[0]
                for line in r.read().decode().splitlines()
                if line and not line.startswith("#")
            }
        assert used <= served, f"not served: {sorted(used - served)}"
        return True

    # Series appear once measured (the complete-latency histogram after the first acked trees),
    # whichever tests ran before this one: wait for every one the dashboard uses.
    eventually(all_served, timeout_s=60, what="every metric the dashboard uses")
