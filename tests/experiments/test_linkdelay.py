"""The EMULATED link delay: the relay's delay line holds every chunk for the link's delay
and keeps order (no root needed), and on the testbed a round trip between two boards
through the relays takes delay(A) + delay(B) within 15% (root; skipped otherwise)."""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest

from squall.experiments import netns
from squall.experiments.boards import BoardFileError, parse_boards
from squall.experiments.linkdelay import DelayLine, LinkDelay, format_links, parse_links
from squall.experiments.testbed import Testbed, read_state
from squall.ports import free_port
from tests.experiments.testbed_helpers import SUBNET


def relay_pair(link: LinkDelay) -> tuple[socket.socket, socket.socket, threading.Event]:
    """A delay line from one socket pair to another: write into ``a``, read from ``b``."""
    a, a_peer = socket.socketpair()
    b_peer, b = socket.socketpair()
    done = threading.Event()
    DelayLine(a_peer, b_peer, link, random.Random(1), done.set).start()
    return a, b, done


def test_a_chunk_leaves_after_the_link_delay():
    a, b, _ = relay_pair(LinkDelay(20.0))
    waits = []
    for _ in range(5):
        t0 = time.perf_counter()
        a.sendall(b"ping")
        assert b.recv(16) == b"ping"
        waits.append(time.perf_counter() - t0)
    assert min(waits) >= 0.020  # never early
    assert min(waits) < 0.020 * 1.5  # and the delay is the link's, not some other wait (the best of 5)


def test_jitter_never_reorders_and_the_sender_close_passes_on():
    a, b, done = relay_pair(LinkDelay(5.0, jitter_ms=5.0))
    sent = b"".join(i.to_bytes(2, "big") for i in range(200))
    for i in range(0, len(sent), 2):
        a.sendall(sent[i : i + 2])
        time.sleep(0.0005)  # separate chunks, each with its own jitter
    a.shutdown(socket.SHUT_WR)
    got = b""
    b.settimeout(10)
    while chunk := b.recv(4096):
        got += chunk
    assert got == sent
    assert done.wait(5)


def test_links_round_trip_through_the_command_line_form():
    links = {"10.0.0.2": LinkDelay(0.25, 0.03), "10.0.0.3": LinkDelay(1.5, 1.0)}
    assert parse_links(format_links(links)) == links


def test_board_files_take_the_link_class_defaults_and_refuse_bad_delays():
    wired, wifi = parse_boards([{"id": "a", "class": "pi4"}, {"id": "b", "class": "pi4", "link": "wifi"}])
    assert (wired.link, wired.link_mbit, wired.delay_ms, wired.jitter_ms) == ("ethernet", 100.0, 0.25, 0.03)
    assert (wifi.link, wifi.link_mbit, wifi.delay_ms, wifi.jitter_ms) == ("wifi", 20.0, 1.5, 1.0)
    own = parse_boards([{"id": "c", "class": "pi3", "link": "wifi", "delay_ms": 4, "link_mbit": 10}])[0]
    assert (own.delay_ms, own.jitter_ms, own.link_mbit) == (4.0, 1.0, 10.0)
    with pytest.raises(BoardFileError, match=r"boards\[0\] \(d\): delay_ms must be a number"):
        parse_boards([{"id": "d", "class": "pi3", "delay_ms": -1}])
    with pytest.raises(BoardFileError, match=r"link must be one of ethernet, wifi, got 'lte'"):
        parse_boards([{"id": "e", "class": "pi3", "link": "lte"}])


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_one_way_delays_are_fitted_to_the_pairs_round_trips():
    from squall.experiments.testbed import fit_one_way_delays

    rtts = [
        {"from": a, "to": b, "median_ms": d[a] + d[b]}
        for d in [{"a": 1.0, "b": 2.0, "c": 4.0}]
        for a in d
        for b in d
        if a != b
    ]
    assert fit_one_way_delays(["a", "b", "c"], rtts) == {"a": 1.0, "b": 2.0, "c": 4.0}
    # A pair that failed gives no row; a board with no pair at all keeps its board file's delay.
    rtts = [{"from": "a", "to": "b", "median_ms": 3.0}, {"from": "a", "to": "c", "error": "refused"}]
    assert set(fit_one_way_delays(["a", "b", "c"], rtts)) == {"a", "b"}


def test_round_trip_between_boards_is_twice_the_link_delay(clean_prefix: str):
    """For every board pair, no round trip is shorter than delay(A) + delay(B), and the
    median of 30 is within 15% of it: the emulated links add what the board file says.
    (The relays' own cost — about 0.3 ms per round trip idle, several ms on a loaded
    machine — is within 15% at these delays, not at the sub-millisecond delays of wired
    Pi links: the testbed measures it and the supervisors declare the measured delay.)"""
    if netns.delay_unavailable_reason():
        pytest.skip(netns.delay_unavailable_reason())
    delays = {"a": 20, "b": 20, "c": 40}
    boards = parse_boards([{"id": k, "class": "pi3", "delay_ms": v, "jitter_ms": 0} for k, v in delays.items()])
    with Testbed(boards, prefix=clean_prefix, subnet=SUBNET, port=free_port()) as tb:
        rules = netns.redirect_rules(tb.namespace_of(boards[0]))
        assert len(rules) == 2 and all("REDIRECT" in r for r in rules)  # one per other board
        rtts = tb.measure_rtts(count=30)
        assert len(rtts) == 6 and not [r for r in rtts if "error" in r]
        for r in rtts:
            assert r["expected_ms"] == delays[r["from"]] + delays[r["to"]]
            assert r["min_ms"] >= r["expected_ms"]  # never early
            assert r["median_ms"] == pytest.approx(r["expected_ms"], rel=0.15), r
            print(f"{r['from']}->{r['to']}: expected {r['expected_ms']} ms, median {r['median_ms']:.2f} ms")
        with tb.client() as c:  # each supervisor registered its emulated link, delay as measured
            sups = {s["id"]: s for s in c.cluster()["supervisors"]}
        measured = read_state(clean_prefix)["link_delay_ms"]
        assert sups["c"]["link_mbit"] == 100.0
        assert sups["c"]["link_delay_ms"] == pytest.approx(measured["c"], rel=1e-3)
        assert measured["c"] >= 0.9 * 40.0 and measured["a"] >= 0.9 * 20.0  # the board file's, plus the relay's
        relays = [pid for name, pid in read_state(clean_prefix)["pids"].items() if name.startswith("relay-")]
        assert len(relays) == 3 and all(pid in netns.pids_in(clean_prefix) for pid in relays)
    assert not [p for p in relays if netns._alive(p)]  # down stopped the relays
    assert netns.leftovers(clean_prefix) == {"namespaces": [], "links": [], "qdiscs": [], "cgroups": []}
