"""NimbusState: events in, commands out — no sockets, no sleeps."""

from __future__ import annotations

import pytest

from squall import messages as M
from squall.nimbus.state import Send
from squall.nimbus.store import Store
from squall.rebalance import SCHEDULERS
from squall.topology.spec import TopologySpec
from tests.nimbus.nimbus_helpers import (
    CLI,
    ask,
    chain_spec,
    cyclic_chain_spec,
    heartbeat,
    heartbeat_running,
    new_state,
    peer_of,
    pushes,
    register,
    reply,
    submit,
    workers_of,
)

PORTS = [6700, 6701]


def cluster(nodes: int = 2, ports: list[int] = PORTS, now: float = 0.0, **conf):
    st = new_state(**conf)
    for k in range(nodes):
        register(st, f"n{k + 1}", ports, now)
    return st


def assert_covers(push, topology: str, executors: int) -> None:
    """Every executor exactly once, distinct ports per node, one placement map for all."""
    workers = workers_of(push, topology)
    placed = sorted(e for execs in workers.values() for e in execs)
    assert placed == list(range(executors))
    maps = [w.placement for sa in push.values() for w in sa.workers if w.topology == topology]
    assert maps and all(m == maps[0] for m in maps)
    assert sorted(maps[0]) == list(range(executors))
    for (node, port), execs in workers.items():
        assert all(maps[0][e] == f"host-{node}:{port}" for e in execs)


# -- registration ---------------------------------------------------------------------------


def test_register_is_accepted_and_gets_its_declarative_set():
    st = new_state()
    cmds = register(st, "n1", PORTS, 0.0)
    assert cmds[0].peer == peer_of("n1") and cmds[0].msg == M.RegisterReply(ok=True, heartbeat_s=1.0, term=1)
    assert pushes(cmds) == {"n1": M.SupervisorAssignment("n1", 1, [], term=1)}


def test_a_live_id_from_another_peer_is_refused_until_it_times_out():
    st = new_state()
    register(st, "n1", PORTS, 0.0)
    (refused,) = register(st, "n1", PORTS, 3.0, peer=b"intruder", pid=999)
    assert refused.peer == b"intruder" and not refused.msg.ok
    assert "n1" in refused.msg.reason and "already registered" in refused.msg.reason
    heartbeat(st, "n1", 4.0)
    assert not register(st, "n1", PORTS, 8.9, peer=b"intruder", pid=999)[0].msg.ok
    # Silent for longer than the timeout: the newcomer takes the id.
    assert register(st, "n1", PORTS, 9.1, peer=b"intruder", pid=999)[0].msg.ok


def test_reregistering_from_the_same_peer_is_accepted():
    st = new_state()
    register(st, "n1", PORTS, 0.0)
    assert register(st, "n1", PORTS, 1.0)[0].msg.ok


def test_the_same_process_reconnecting_on_a_new_connection_is_accepted():
    st = new_state()
    register(st, "n1", PORTS, 0.0)
    assert "register again" in heartbeat(st, "n1", 1.0, peer=b"reconnected")[0].msg.reason
    assert register(st, "n1", PORTS, 1.1, peer=b"reconnected")[0].msg.ok  # same host and pid
    assert heartbeat(st, "n1", 2.0, peer=b"reconnected") == [Send(b"reconnected", M.HeartbeatAck(1, term=1))]


@pytest.mark.parametrize(
    "ports, capacity",
    [([6700, 6700], 1e9), ([0], 1e9), (PORTS, float("nan"))],
    ids=["duplicate ports", "port 0", "capacity nan"],
)
def test_a_malformed_registration_is_refused(ports, capacity):
    (cmd,) = register(new_state(), "n1", ports, 0.0, capacity_hz=capacity)
    assert not cmd.msg.ok and cmd.msg.reason


def test_a_registered_link_is_kept_and_unknown_by_default():
    st = new_state()
    register(st, "n1", PORTS, 0.0)
    assert (st.supervisors["n1"].link_mbit, st.supervisors["n1"].link_delay_ms) == (None, None)
    msg = M.RegisterSupervisor("n2", "host-n2", PORTS, 1e9, 1e9, 4, 1024, 101, link_mbit=20.0, link_delay_ms=1.5)
    assert st.handle(peer_of("n2"), msg, 0.0)[0].msg.ok
    assert (st.supervisors["n2"].link_mbit, st.supervisors["n2"].link_delay_ms) == (20.0, 1.5)


@pytest.mark.parametrize(
    "link",
    [{"link_mbit": 0.0}, {"link_mbit": float("inf")}, {"link_delay_ms": -1.0}],
    ids=["zero rate", "infinite rate", "negative delay"],
)
def test_a_registration_with_an_impossible_link_is_refused(link):
    msg = M.RegisterSupervisor("n1", "host-n1", PORTS, 1e9, 1e9, 4, 1024, 100, **link)
    (cmd,) = new_state().handle(peer_of("n1"), msg, 0.0)
    assert not cmd.msg.ok and next(iter(link)) in cmd.msg.reason


def test_heartbeat_from_an_unknown_supervisor_asks_it_to_register():
    (cmd,) = heartbeat(new_state(), "ghost", 0.0)
    assert cmd.msg == M.RegisterReply(ok=False, reason="unknown supervisor; register again")


# -- submit ---------------------------------------------------------------------------------


def test_submit_places_every_executor_once_on_distinct_ports():
    st = cluster(nodes=2)
    cmds = submit(st, "chain", 1.0, workers=3)
    r = reply(cmds)
    assert r.ok and r.data == {
        "name": "chain",
        "status": "ACTIVE",
        "workers": 3,
        "executors": 9,
        "scheduler": "round_robin",
        "warnings": [],
    }
    push = pushes(cmds)
    assert set(push) == {"n1", "n2"} and all(sa.version == 2 for sa in push.values())
    assert_covers(push, "chain", 9)  # 6 user executors + 3 ackers (one per worker)
    w = push["n1"].workers[0]
    assert w.active and w.assignment_version >= 1
    assert w.conf["topology.acker.executors"] == 3 and st.topologies["chain"].workers == 3
    assert w.conf["chain.reliable"] is True  # the spec's config, carried along


def test_a_topology_with_cycles_is_accepted_with_a_warning_naming_each_cycle():
    cmds = submit(cluster(nodes=2), "loops", 1.0, spec=cyclic_chain_spec())
    r = reply(cmds)
    assert r.ok and r.data["status"] == "ACTIVE"
    assert [w.split(" has a cycle ")[1].split(":")[0] for w in r.data["warnings"]] == [
        "stage1 -> stage2 -> stage1",
        "stage2 -> stage2",
    ]
    assert all("'loops'" in w for w in r.data["warnings"])


def test_conf_overrides_spec_config_and_workers_wins():
    st = cluster(nodes=2)
    cmds = submit(
        st, "chain", 1.0, workers=2, conf={"chain.work": 7, "topology.workers": 4, "topology.acker.executors": 1}
    )
    conf = next(iter(pushes(cmds).values())).workers[0].conf
    assert conf["chain.work"] == 7 and conf["topology.acker.executors"] == 1
    assert "topology.workers" not in conf  # Nimbus's business: a live rebalance changes it
    assert ask(st, M.GetTopology(2, "chain"), 1.0).data["conf"]["topology.workers"] == 2
    assert_covers(pushes(cmds), "chain", 7)


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_every_scheduler_places_a_fresh_submission(scheduler):
    st = cluster(nodes=3)
    cmds = submit(st, "chain", 1.0, workers=4, scheduler=scheduler)
    assert reply(cmds).data["status"] == "ACTIVE"
    assert_covers(pushes(cmds), "chain", 10)


def test_an_invalid_spec_is_refused_naming_the_fault_and_nothing_is_stored():
    store = Store(":memory:")
    st = new_state(store)
    register(st, "n1", PORTS, 0.0)
    spec = chain_spec()
    spec["components"][1]["inputs"][0]["component"] = "nowhere"
    cmds = submit(st, "broken", 1.0, spec=spec)
    r = reply(cmds)
    assert not r.ok and "nowhere" in r.error
    assert not pushes(cmds)
    assert ask(st, M.ListTopologies(2), 1.0).data == []
    assert store.load_topologies() == []


@pytest.mark.parametrize(
    "kwargs, fault",
    [
        ({"scheduler": "nope"}, "unknown scheduler"),
        ({"workers": 0}, "workers"),
        ({"spec": {"version": 99}}, "version"),
        ({"conf": {"topology.acker.executors": -1}}, "topology.acker.executors"),
        ({"conf": {"topology.scheduler.params": {"alpha": 3}}}, "alpha"),
    ],
    ids=["unknown scheduler", "zero workers", "bad spec version", "negative ackers", "bad scheduler params"],
)
def test_bad_submissions_are_refused(kwargs, fault):
    st = cluster(nodes=1)
    r = reply(submit(st, "t", 1.0, **kwargs))
    assert not r.ok and fault in r.error


def test_an_oversized_bundle_and_a_bad_name_are_refused():
    st = cluster(nodes=1, **{"nimbus.bundle.max.bytes": 4})
    assert "exceeds" in reply(submit(st, "t", 1.0)).error
    st = cluster(nodes=1)
    assert "invalid topology name" in reply(submit(st, "../etc", 1.0)).error


def test_a_duplicate_name_is_refused():
    st = cluster(nodes=2)
    assert reply(submit(st, "chain", 1.0)).ok
    cmds = submit(st, "chain", 2.0)
    assert "already exists" in reply(cmds).error and not pushes(cmds)


def test_a_topology_waits_for_capacity_and_is_placed_when_a_supervisor_registers():
    st = new_state()
    cmds = submit(st, "chain", 0.0, workers=2)
    assert reply(cmds).data["status"] == "WAITING" and not pushes(cmds)
    assert st.tick(1.0) == []
    cmds = register(st, "n1", PORTS, 2.0)
    assert_covers(pushes(cmds), "chain", 8)
    assert ask(st, M.ListTopologies(1), 2.0).data[0]["status"] == "ACTIVE"


def test_two_topologies_never_share_a_port():
    st = cluster(nodes=2)
    submit(st, "a", 1.0, workers=2)
    push = pushes(submit(st, "b", 1.0, workers=2, rid=2))
    used = [(node, w.port) for node, sa in push.items() for w in sa.workers]
    assert len(used) == len(set(used)) == 4


# -- activation, kill, rebalance ------------------------------------------------------------


def test_deactivate_pushes_inactive_workers():
    st = cluster(nodes=2)
    submit(st, "chain", 1.0)
    cmds = st.handle(CLI, M.SetActive(2, "chain", False), 2.0)
    assert reply(cmds).data["status"] == "INACTIVE"
    assert all(not w.active for sa in pushes(cmds).values() for w in sa.workers)
    assert "no topology" in ask(st, M.SetActive(3, "nope", True), 2.0).error


def test_kill_deactivates_then_removes_after_the_wait():
    st = cluster(nodes=2)
    submit(st, "chain", 1.0)
    cmds = st.handle(CLI, M.KillTopology(2, "chain", wait_s=10.0), 2.0)
    assert reply(cmds).data["status"] == "KILLED"
    assert all(not w.active for sa in pushes(cmds).values() for w in sa.workers)
    for n in ("n1", "n2"):
        heartbeat_running(st, n, 11.0)
    assert st.tick(11.9) == []
    removed = pushes(st.tick(12.0))
    assert removed and all(sa.workers == [] for sa in removed.values())
    assert ask(st, M.ListTopologies(3), 12.0).data == []
    assert "no topology" in ask(st, M.GetTopology(4, "chain"), 12.0).error
    assert reply(submit(st, "chain", 12.0, rid=5)).ok  # the name is free again


def test_kill_defaults_to_the_message_timeout():
    st = cluster(nodes=1)
    submit(st, "chain", 0.0, conf={"topology.message.timeout.secs": 3})
    ask(st, M.KillTopology(2, "chain"), 1.0)
    heartbeat(st, "n1", 3.5)
    assert st.tick(3.9) == [] and pushes(st.tick(4.0))["n1"].workers == []


def test_rebalance_changes_workers_and_parallelism_after_the_wait():
    st = cluster(nodes=3)
    submit(st, "chain", 0.0, workers=2)
    cmds = st.handle(CLI, M.RebalanceTopology(2, "chain", wait_s=5.0, workers=3, parallelism={"stage1": 1}), 1.0)
    assert reply(cmds).data["status"] == "REBALANCING"
    assert all(not w.active for sa in pushes(cmds).values() for w in sa.workers)
    for n in ("n1", "n2", "n3"):
        heartbeat(st, n, 5.5)
    cmds = st.tick(6.0)
    final = pushes(cmds)
    # 5 user executors (stage1 now has one) + 2 ackers (the count chosen at submit)
    assert_covers(final, "chain", 7)
    assert len(workers_of(final, "chain")) == 3
    assert all(w.active for sa in final.values() for w in sa.workers)
    # The spec changed: each supervisor first got a set without the topology, to refetch it.
    sent: dict[str, list] = {}
    for c in cmds:
        sent.setdefault(c.msg.supervisor_id, []).append(c.msg)
    drained = [msgs[0] for msgs in sent.values() if len(msgs) == 2]
    assert len(drained) == 2 and all(sa.workers == [] for sa in drained)
    got = ask(st, M.GetTopology(3, "chain"), 6.0).data
    assert TopologySpec.from_dict(got["spec"]).component("stage1").par == 1
    assert ask(st, M.ListTopologies(4), 6.0).data[0] == {
        "name": "chain",
        "status": "ACTIVE",
        "workers": 3,
        "executors": 7,
        "scheduler": "round_robin",
    }


@pytest.mark.parametrize(
    "parallelism, fault",
    [({"stage1": 5}, "stage1"), ({"nowhere": 1}, "nowhere"), ({"stage1": 0}, "stage1")],
    ids=["more than its tasks", "unknown component", "zero"],
)
def test_a_bad_rebalance_is_refused_naming_the_component(parallelism, fault):
    st = cluster(nodes=2)
    submit(st, "chain", 0.0)
    r = ask(st, M.RebalanceTopology(2, "chain", parallelism=parallelism), 1.0)
    assert not r.ok and fault in r.error
    assert ask(st, M.ListTopologies(3), 1.0).data[0]["status"] == "ACTIVE"


def test_rebalance_can_switch_scheduler_and_wait_zero_is_immediate():
    st = cluster(nodes=2)
    submit(st, "chain", 0.0, workers=2)
    cmds = st.handle(CLI, M.RebalanceTopology(2, "chain", wait_s=0.0, scheduler="offline"), 1.0)
    assert reply(cmds).ok
    assert_covers(pushes(cmds), "chain", 8)
    assert ask(st, M.ListTopologies(3), 1.0).data[0]["scheduler"] == "offline"


# -- failures -------------------------------------------------------------------------------


def test_a_silent_supervisor_is_declared_dead_and_its_workers_move_to_the_living():
    st = cluster(nodes=3)
    before = workers_of(pushes(submit(st, "chain", 0.0, workers=3)), "chain")
    assert {node for node, _ in before} == {"n1", "n2", "n3"}
    heartbeat_running(st, "n1", 4.0)
    heartbeat_running(st, "n2", 4.0)
    assert st.tick(5.0) == []
    after = workers_of(pushes(st.tick(5.5)), "chain")
    assert {node for node, _ in after} <= {"n1", "n2"}
    assert sorted(e for ex in after.values() for e in ex) == list(range(9))
    for key, execs in before.items():  # workers on live nodes keep their port and executors
        if key[0] != "n3":
            assert set(execs) <= set(after[key])
    cluster_view = ask(st, M.GetCluster(2), 5.5).data
    assert [s["alive"] for s in cluster_view["supervisors"]] == [True, True, False]
    assert "register again" in heartbeat(st, "n3", 6.0)[0].msg.reason


def test_a_backlog_in_nimbus_own_socket_is_not_silence_of_the_boards():
    """A tick that finds messages still unread judges silence at the time everything sent
    had been read (``heard_until``), so heartbeats waiting in the socket kill no board; the
    same silence judged at ``now`` does."""
    from squall.nimbus.events import Tick

    st = cluster(nodes=2)
    submit(st, "chain", 0.0, workers=2)
    heartbeat_running(st, "n1", 1.0)
    heartbeat_running(st, "n2", 1.0)
    # The loop fell behind at 2.0: at 10.0 it has not yet read the heartbeats sent since.
    assert st.apply(Tick(10.0, heard_until=2.0)) == []
    assert st.live_nodes(10.0) == {"n1", "n2"} and st.counters["ticks_behind_backlog"] == 1
    assert not any(s.dead for s in st.supervisors.values())
    # Caught up: the same boards, still silent, are dead now.
    st.apply(Tick(10.5))
    assert all(s.dead for s in st.supervisors.values()) and st.live_nodes(10.5) == set()


def test_restart_reloads_topologies_and_pushes_the_same_assignment(tmp_path):
    db = tmp_path / "nimbus.db"
    st = new_state(Store(db))
    for n in ("n1", "n2"):
        register(st, n, PORTS, 0.0)
    before = pushes(submit(st, "chain", 0.0, workers=3))
    st.store.close()

    st2 = new_state(Store(db))
    assert [r["name"] for r in ask(st2, M.ListTopologies(1), 100.0).data] == ["chain"]
    assert heartbeat(st2, "n1", 100.0)[0].msg.ok is False  # it must register again
    after = pushes(register(st2, "n1", PORTS, 100.5, peer=b"new-1"))
    assert after["n1"].workers == before["n1"].workers
    assert after["n1"].version > before["n1"].version
    assert st2.tick(101.0) == []  # n2 still has its grace period
    after2 = pushes(register(st2, "n2", PORTS, 102.0, peer=b"new-2"))
    assert after2["n2"].workers == before["n2"].workers
    assert ask(st2, M.GetTopology(2, "chain"), 102.0).data["bundle"] == b"bundle-bytes"


def test_after_restart_a_supervisor_that_never_returns_is_declared_dead(tmp_path):
    db = tmp_path / "nimbus.db"
    st = new_state(Store(db))
    for n in ("n1", "n2"):
        register(st, n, PORTS, 0.0)
    submit(st, "chain", 0.0, workers=2)
    st.store.close()
    st2 = new_state(Store(db))
    st2.tick(50.0)  # boot
    register(st2, "n1", PORTS, 51.0)
    heartbeat(st2, "n1", 54.0)
    moved = workers_of(pushes(st2.tick(55.5)), "chain")
    assert {node for node, _ in moved} == {"n1"}
    assert sorted(e for ex in moved.values() for e in ex) == list(range(8))


# -- queries and bad input ------------------------------------------------------------------


def test_queries_have_the_documented_shapes():
    st = cluster(nodes=2)
    submit(st, "chain", 0.0, workers=2)
    a = ask(st, M.GetAssignment(2, "chain"), 1.0).data
    assert a["topology"] == "chain" and a["traffic"] == []
    assert set(a["executors"][0]) == {"id", "component", "tasks", "node", "port", "pid", "load_hz"}
    assert [e["id"] for e in a["executors"]] == list(range(8))
    t = ask(st, M.GetTopology(3, "chain"), 1.0).data
    assert set(t) == {"spec", "bundle", "conf"} and t["conf"]["topology.name"] == "chain"
    c = ask(st, M.GetCluster(4), 1.0).data
    assert set(c) == {"supervisors", "topologies"}
    assert set(c["supervisors"][0]) == {
        "id",
        "host",
        "ports",
        "slots",
        "used",
        "capacity_hz",
        "link_mbit",
        "link_delay_ms",
        "alive",
        "last_seen",
    }
    assert sum(s["used"] for s in c["supervisors"]) == 2
    assert "no topology" in ask(st, M.GetAssignment(5, "nope"), 1.0).error


def test_unexpected_message_types_are_counted_and_ignored():
    st = cluster(nodes=1)
    assert st.handle(b"x", M.WorkerUpdate({}, True, 1), 0.0) == []
    assert st.handle(b"x", M.RegisterReply(ok=True), 0.0) == []
    r = reply(st.handle(b"x", M.Reply(rid=7, ok=True), 0.0))
    assert r.rid == 7 and not r.ok and "does not handle" in r.error
    assert st.counters["unexpected_messages"] == 3


@pytest.mark.parametrize(
    "msg",
    [
        M.SubmitTopology(1, "", {}, b""),
        M.SubmitTopology(1, "t", {"version": 1, "name": "t", "components": "nope"}, b""),
        M.SubmitTopology(1, "t", chain_spec(), b"", workers=10**9),
        M.SubmitTopology(1, "t", chain_spec(), b"", conf={"topology.workers": "two"}),
        M.KillTopology(1, "chain", wait_s=float("nan")),
        M.KillTopology(1, "chain", wait_s=-1.0),
        M.RebalanceTopology(1, "chain", workers=10**9),
        M.RebalanceTopology(1, "chain", parallelism={"__acker": 10**9}),
        M.RebalanceTopology(1, "chain", wait_s=float("inf")),
        M.SetActive(1, "", True),
        M.GetAssignment(1, "\x00"),
    ],
    ids=lambda m: type(m).__name__,
)
def test_odd_requests_get_an_error_reply_and_never_raise(msg):
    st = cluster(nodes=1)
    submit(st, "chain", 0.0, rid=0)
    r = ask(st, msg, 1.0)
    assert not r.ok and r.error and "internal error" not in r.error
    assert st.counters["internal_errors"] == 0
    assert ask(st, M.ListTopologies(2), 1.0).data[0]["status"] == "ACTIVE"


def test_a_supervisor_of_another_cluster_is_refused_with_both_names():
    st = new_state(**{"nimbus.cluster": "lab"})
    msg = M.RegisterSupervisor("pi-9", "host", [6700], 1e9, 1e9, 4, 1024, 7, cluster="home")
    (cmd,) = st.handle(b"peer-pi-9", msg, 0.0)
    assert isinstance(cmd.msg, M.RegisterReply) and not cmd.msg.ok
    assert "'home'" in cmd.msg.reason and "'lab'" in cmd.msg.reason
    assert "pi-9" not in st.supervisors
    ok = st.handle(b"peer-pi-9", M.RegisterSupervisor("pi-9", "host", [6700], 1e9, 1e9, 4, 1024, 7, cluster="lab"), 0.0)
    assert any(isinstance(c.msg, M.RegisterReply) and c.msg.ok for c in ok)


def test_partition_without_pymetis_is_refused_with_the_install_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pymetis" else real(name, *a))
    st = new_state()
    register(st, "n1", [6700, 6701], 0.0)
    r = reply(submit(st, "t", 0.0, scheduler="partition"))
    assert not r.ok and "squall[partition]" in r.error
    assert "t" not in st.topologies
