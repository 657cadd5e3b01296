"""The control plane's DSCP mark: a real Nimbus and a real supervisor on loopback, their
packets captured, and the TOS byte of every packet between them read from the capture.

The capture needs a packet socket (root); without it those tests skip, saying so. The
settings' bounds are checked without sockets."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import zmq

from squall.cli import UsageError
from squall.cli.supervisor import parse_settings
from squall.control_mark import CS5, DEFAULT_CONTROL_DSCP, check_dscp, tos_byte
from squall.nimbus.config import CONTROL_DSCP, ConfError, check_nimbus_conf
from squall.nimbus.server import NimbusServer
from squall.nimbus.state import NimbusState
from squall.nimbus.store import Store
from squall.ports import free_port
from squall.supervisor.daemon import SupervisorDaemon
from squall.supervisor.facts import board_facts

pytestmark = pytest.mark.timeout(60)

ETH_P_IP = 0x0800
PACKET_OUTGOING = 4  # the copy of a loopback packet as it leaves; its arrival is seen too


def test_the_default_mark_is_cs5_in_the_tos_byte() -> None:
    assert DEFAULT_CONTROL_DSCP == CS5 == 40 and tos_byte(CS5) == 0xA0
    assert check_dscp(0, "x") == 0 and check_dscp(63, "x") == 63


@pytest.mark.parametrize("bad", [-1, 64, 40.0, True, "40", None])
def test_a_dscp_outside_0_to_63_is_refused_naming_the_setting(bad: object) -> None:
    with pytest.raises(ValueError, match="the.setting must be a DSCP"):
        check_dscp(bad, "the.setting")


def test_the_supervisor_setting_is_parsed_and_bounded() -> None:
    assert parse_settings(["supervisor.control.dscp=0"]) == {"supervisor.control.dscp": 0}
    assert parse_settings(["supervisor.control.dscp=46"]) == {"supervisor.control.dscp": 46}
    for bad in ("64", "cs5", "4.5"):
        with pytest.raises(UsageError, match="supervisor.control.dscp: must be a DSCP"):
            parse_settings([f"supervisor.control.dscp={bad}"])


def test_the_nimbus_setting_is_bounded() -> None:
    check_nimbus_conf({CONTROL_DSCP: 0})
    with pytest.raises(ConfError, match=r"nimbus.control.dscp must be an integer from 0 to 63"):
        check_nimbus_conf({CONTROL_DSCP: 64})


@contextmanager
def captured_tos(port: int) -> Iterator[list[tuple[str, int, int]]]:
    """Every IPv4 TCP packet on loopback to or from ``port`` while the block runs, as
    (direction "to"/"from" the port, TOS byte, payload length)."""
    if os.geteuid() != 0:
        pytest.skip("capturing packets on loopback needs root (a packet socket)")
    sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    sniffer.bind(("lo", 0))
    sniffer.settimeout(0.1)
    packets: list[tuple[str, int, int]] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                data, addr = sniffer.recvfrom(65535)
            except TimeoutError:
                continue
            if addr[2] == PACKET_OUTGOING or len(data) < 20 or data[9] != socket.IPPROTO_TCP:
                continue
            ihl = (data[0] & 0x0F) * 4
            src, dst = struct.unpack("!HH", data[ihl : ihl + 4])
            tcp_header = (data[ihl + 12] >> 4) * 4
            total = struct.unpack("!H", data[2:4])[0]
            if port in (src, dst):
                packets.append(("to" if dst == port else "from", data[1], total - ihl - tcp_header))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield packets
    finally:
        done.set()
        reader.join(5)
        sniffer.close()


def run_and_capture(tmp_path: Path, nimbus_dscp: int, supervisor_dscp: int) -> list[tuple[str, int, int]]:
    """A real Nimbus and a real supervisor with these marks, until Nimbus has read three
    heartbeats of the board; returns the packets between them."""
    port = free_port()
    with captured_tos(port) as packets:
        server = NimbusServer(NimbusState(Store(":memory:"), conf={CONTROL_DSCP: nimbus_dscp}), "127.0.0.1", port, 0)
        sup = SupervisorDaemon(
            f"127.0.0.1:{port}",
            board_facts("pi-mark", slots=1, capacity_hz=1e9),
            [free_port()],
            tmp_path,
            control_dscp=supervisor_dscp,
        )
        threads = [threading.Thread(target=server.run, daemon=True), threading.Thread(target=sup.run, daemon=True)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 20
            while server.state.counters["msg_Heartbeat"] < 3:
                assert time.monotonic() < deadline, "the supervisor's heartbeats did not reach Nimbus"
                time.sleep(0.05)
            # The socket the workers talk to (loopback) is never marked, whatever the setting.
            assert sup.worker_sock.getsockopt(zmq.TOS) == 0
            assert sup.nimbus_sock.getsockopt(zmq.TOS) == tos_byte(supervisor_dscp)
        finally:
            sup.stop()
            server.stop()
            for t in threads:
                t.join(10)
            server.close()
    return packets


def test_every_packet_between_supervisor_and_nimbus_carries_cs5(tmp_path: Path) -> None:
    packets = run_and_capture(tmp_path, DEFAULT_CONTROL_DSCP, DEFAULT_CONTROL_DSCP)
    # Both directions carried messages (registration and heartbeats up; the reply and acks down).
    assert any(d == "to" and n > 0 for d, _, n in packets) and any(d == "from" and n > 0 for d, _, n in packets)
    assert {tos & 0xFC for _, tos, _ in packets} == {tos_byte(CS5)}, packets[:20]


def test_marking_off_leaves_the_packets_best_effort(tmp_path: Path) -> None:
    packets = run_and_capture(tmp_path, 0, 0)
    assert any(n > 0 for _, _, n in packets)
    assert {tos & 0xFC for _, tos, _ in packets} == {0}
