"""Discovery on loopback: the beacon's messages, the responder, and a client that accepts
only a Nimbus of its own cluster (and, with a key, only one that proves it)."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from squall import discovery as D

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def responder():
    started: list[D.DiscoveryResponder] = []

    def start(cluster: str, nimbus_port: int = 6627, key: bytes | None = None, host: str = "") -> D.DiscoveryResponder:
        r = D.DiscoveryResponder(
            cluster, nimbus_port, port=0, advertise_host=host, http_port=8080, key=key, bind="127.0.0.1"
        ).start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def test_a_responder_answers_its_cluster_with_the_control_plane_port(responder):
    r = responder("lab", nimbus_port=7001)
    found = D.search("lab", r.port, wait_s=1.0, targets=["127.0.0.1"])
    assert found == [D.Found(host="127.0.0.1", port=7001, cluster="lab", http_port=8080)]
    assert found[0].address == "127.0.0.1:7001"


def test_a_responder_stays_silent_for_another_cluster(responder):
    r = responder("lab")
    assert D.search("other", r.port, wait_s=0.5, targets=["127.0.0.1"]) == []
    assert r.ignored == 1 and r.answered == 0


def test_an_advertised_host_wins_over_the_source_address(responder):
    r = responder("lab", host="10.1.2.3")
    assert D.search("lab", r.port, wait_s=1.0, targets=["127.0.0.1"])[0].host == "10.1.2.3"


def test_keys_must_match_on_both_sides(responder):
    r = responder("lab", key=b"secret")
    assert D.search("lab", r.port, wait_s=0.5, targets=["127.0.0.1"]) == []  # unkeyed request ignored
    assert D.search("lab", r.port, wait_s=0.5, key=b"wrong", targets=["127.0.0.1"]) == []
    assert len(D.search("lab", r.port, wait_s=1.0, key=b"secret", targets=["127.0.0.1"])) == 1


def request(cluster: str = "lab", nonce: str = "n1") -> dict:
    return {"squall": "discover", "v": 1, "cluster": cluster, "nonce": nonce}


def test_a_client_rejects_other_clusters_stale_nonces_and_bad_macs():
    reply = D.make_reply(request(), "", 6627, 0)
    assert D.accept_reply(reply, "10.0.0.5", "lab", "n1") == D.Found("10.0.0.5", 6627, "lab", 0)
    assert D.accept_reply(reply, "10.0.0.5", "other", "n1") is None
    assert D.accept_reply(reply, "10.0.0.5", "lab", "n2") is None  # a replayed answer to another search
    keyed = D.make_reply(request(), "", 6627, 0, key=b"k")
    assert D.accept_reply(keyed, "10.0.0.5", "lab", "n1", key=b"k") == D.Found("10.0.0.5", 6627, "lab", 0)
    assert D.accept_reply(keyed, "10.0.0.5", "lab", "n1", key=b"x") is None
    assert D.accept_reply(reply, "10.0.0.5", "lab", "n1", key=b"k") is None  # unkeyed reply to a keyed client
    tampered = json.loads(keyed)
    tampered["port"] = 6666
    assert D.accept_reply(json.dumps(tampered).encode(), "10.0.0.5", "lab", "n1", key=b"k") is None


@pytest.mark.parametrize(
    "datagram",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe", id="not UTF-8"),
        pytest.param(b"[1,2]", id="not an object"),
        pytest.param(b'{"squall":"nimbus","v":2,"cluster":"lab","nonce":"n1","port":1}', id="future version"),
        pytest.param(b'{"squall":"nimbus","v":1,"cluster":"lab","nonce":"n1","port":0}', id="port zero"),
        pytest.param(b'{"squall":"nimbus","v":1,"cluster":"lab","nonce":"n1","port":true}', id="port a bool"),
        pytest.param(b'{"squall":"nimbus","v":1,"cluster":"lab","nonce":"n1","port":1,"host":5}', id="host a number"),
        pytest.param(b" " * (D.MAX_DATAGRAM + 1), id="oversized"),
    ],
)
def test_malformed_replies_are_ignored(datagram):
    assert D.accept_reply(datagram, "10.0.0.5", "lab", "n1") is None


def test_two_nimbuses_answering_everyone_are_told_apart_by_cluster():
    """Even when every Nimbus answers every beacon, the client keeps its own cluster's."""
    socks = []
    threads = []
    stop = threading.Event()

    def careless(cluster: str, nimbus_port: int) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.1)
        socks.append(sock)

        def serve() -> None:
            while not stop.is_set():
                try:
                    data, peer = sock.recvfrom(2048)
                except TimeoutError:
                    continue
                req = json.loads(data)
                sock.sendto(D.make_reply({**req, "cluster": cluster}, "", nimbus_port, 0), peer)

        threads.append(threading.Thread(target=serve, daemon=True))
        threads[-1].start()
        return sock.getsockname()[1]

    try:
        port_a, port_b = careless("alpha", 7001), careless("beta", 7002)
        # One search reaches both (each on its own port here; on a LAN both share 6628).
        for cluster, expected in (("alpha", 7001), ("beta", 7002)):
            nonce = "fixed"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(2)
                for port in (port_a, port_b):
                    s.sendto(D.make_request(cluster, nonce), ("127.0.0.1", port))
                answers = [s.recvfrom(2048) for _ in range(2)]
            accepted = [D.accept_reply(d, ip, cluster, nonce) for d, (ip, _) in answers]
            assert [f.port for f in accepted if f] == [expected]
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        for sock in socks:
            sock.close()


def test_find_nimbus_gives_up_after_its_timeout():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:
        quiet.bind(("127.0.0.1", 0))
        assert D.find_nimbuses("lab", quiet.getsockname()[1], timeout_s=0.5, targets=["127.0.0.1"], round_s=0.2) == []


def test_local_address_towards():
    assert D.local_address_towards("127.0.0.1") == "127.0.0.1"
    assert D.local_address_towards("localhost") == "127.0.0.1"


def test_find_nimbuses_returns_every_replica_of_the_cluster_that_answers():
    """Three replicas of one cluster (on 127.0.0.1-3, one discovery port) and a Nimbus of
    another cluster: a supervisor collects the three, so it can move among them."""
    first = D.DiscoveryResponder("lab", 7001, port=0, bind="127.0.0.1").start()
    port = first.port
    others = [D.DiscoveryResponder("lab", 7000 + i, port=port, bind=f"127.0.0.{i}").start() for i in (2, 3)]
    stranger = D.DiscoveryResponder("other", 7009, port=port, bind="127.0.0.4").start()
    try:
        targets = [f"127.0.0.{i}" for i in (1, 2, 3, 4)]
        found = D.find_nimbuses("lab", port, timeout_s=3, targets=targets, round_s=0.5)
        assert sorted(f.address for f in found) == ["127.0.0.1:7001", "127.0.0.2:7002", "127.0.0.3:7003"]
    finally:
        for r in (first, *others, stranger):
            r.stop()
