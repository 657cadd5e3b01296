"""Discovery across a real (virtual) network: Nimbuses and boards in network namespaces on
one bridge. A supervisor started without --nimbus finds the Nimbus of its cluster and
registers with it; two Nimbuses of different clusters on the same LAN are told apart.

Needs root and ``ip netns``; skipped otherwise. The fixture deletes every namespace it made
(their veths go with them), whatever happens; the bridge lives in a namespace of its own, so
the host's network is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SUBNET = "10.213.7"


def ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)


class Lan:
    """Namespaces hanging off one bridge, with the processes started in them."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.bridge_ns = f"sqbr{self.tag}"
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.next_host = 1

    def _ok(self, *args: str) -> None:
        r = ip(*args)
        if r.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")

    def create(self) -> None:
        self._ok("netns", "add", self.bridge_ns)
        self.namespaces.append(self.bridge_ns)
        self._ok("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        self._ok("-n", self.bridge_ns, "link", "set", "br0", "up")

    def node(self, name: str) -> tuple[str, str]:
        """A namespace with one address on the bridge: (namespace, address)."""
        ns = f"sq{name}{self.tag}"
        addr = f"{SUBNET}.{self.next_host}"
        self.next_host += 1
        self._ok("netns", "add", ns)
        self.namespaces.append(ns)
        inner, outer = f"v{name}", f"p{name}{self.tag}"[:15]
        self._ok("link", "add", inner, "netns", ns, "type", "veth", "peer", "name", outer, "netns", self.bridge_ns)
        self._ok("-n", self.bridge_ns, "link", "set", outer, "master", "br0", "up")
        self._ok("-n", ns, "addr", "add", f"{addr}/24", "brd", "+", "dev", inner)
        self._ok("-n", ns, "link", "set", inner, "up")
        self._ok("-n", ns, "link", "set", "lo", "up")
        return ns, addr

    def start(self, ns: str, args: list[str], log: Path) -> subprocess.Popen:
        out = open(log, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "squall", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        out.close()
        self.procs.append(proc)
        return proc

    def run(self, ns: str, code: str) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout

    def destroy(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for ns in reversed(self.namespaces):
            ip("netns", "del", ns)


@pytest.fixture
def lan():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("the ip command (iproute2) is not installed")
    probe = f"sqprobe{uuid.uuid4().hex[:6]}"
    r = ip("netns", "add", probe)
    if r.returncode != 0:
        pytest.skip(f"ip netns is not available here: {r.stderr.strip()}")
    ip("netns", "del", probe)
    net = Lan()
    try:
        net.create()
        yield net
    finally:
        net.destroy()
        left = [ns for ns in net.namespaces if ns in ip("netns", "list").stdout]
        assert not left, f"namespaces left behind: {left}"


def supervisors_of(lan: Lan, ns: str) -> list[dict]:
    out = lan.run(
        ns,
        "import json; from squall.client import NimbusClient\n"
        "print(json.dumps(NimbusClient('127.0.0.1:6627').cluster()['supervisors']))",
    )
    return json.loads(out)


def wait_for(pred, timeout_s: float, what: str, logs: list[Path]):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.5)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in logs if p.exists())
    raise AssertionError(f"{what} within {timeout_s} s\n{tails}")


def test_boards_find_the_nimbus_of_their_own_cluster(lan, tmp_path, monkeypatch):
    ns_a, addr_a = lan.node("na")
    ns_b, addr_b = lan.node("nb")
    ns_1, addr_1 = lan.node("b1")
    ns_2, addr_2 = lan.node("b2")
    logs = [tmp_path / f"{n}.log" for n in ("nimbus-alpha", "nimbus-beta", "board-1", "board-2")]
    for ns, cluster, log in ((ns_a, "alpha", logs[0]), (ns_b, "beta", logs[1])):
        lan.start(
            ns,
            ["nimbus", "--cluster", cluster, "--http-port", "0", "--data-dir", str(tmp_path / cluster), "--insecure"],
            log,
        )  # keyless on purpose: the test is about discovery, not keys
    # No --nimbus, no SQUALL_NIMBUS, no --host: both found by broadcast on the bridge.
    monkeypatch.delenv("SQUALL_NIMBUS", raising=False)
    for ns, cluster, board, log in ((ns_1, "beta", "board-1", logs[2]), (ns_2, "alpha", "board-2", logs[3])):
        lan.start(
            ns,
            [
                "supervisor",
                "--cluster",
                cluster,
                "--id",
                board,
                "--slots",
                "1",
                "--data-dir",
                str(tmp_path / board),
                "--discovery-timeout",
                "60",
                "--insecure",
            ],
            log,
        )

    def registered(ns: str, board: str):
        try:
            return [s for s in supervisors_of(lan, ns) if s["id"] == board]
        except subprocess.CalledProcessError:
            return None  # Nimbus not up yet

    [on_beta] = wait_for(lambda: registered(ns_b, "board-1"), 60, "board-1 did not register with beta", logs)
    [on_alpha] = wait_for(lambda: registered(ns_a, "board-2"), 60, "board-2 did not register with alpha", logs)
    assert on_beta["host"] == addr_1 and on_alpha["host"] == addr_2  # each advertises its LAN address
    assert [s["id"] for s in supervisors_of(lan, ns_a)] == ["board-2"]  # neither crossed over
    assert [s["id"] for s in supervisors_of(lan, ns_b)] == ["board-1"]
    assert f"at {addr_b}:6627" in logs[2].read_text()
    assert f"at {addr_a}:6627" in logs[3].read_text()
