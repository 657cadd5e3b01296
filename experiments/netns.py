"""The kernel objects of the testbed: network namespaces, a bridge, veth pairs, tbf qdiscs
and cgroup v1 cpu/memory groups — made with ``ip``, ``tc`` and the cgroup file system.

Every object's name starts with the testbed's prefix, so :func:`leftovers` finds what a
crashed run left and :func:`remove_all` removes it whether or not a state file survived.
Each function does one thing and raises :class:`TestbedError` with the command's own message
when it fails; removals ignore what is already gone (teardown is idempotent).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

CGROUP_ROOT = Path(os.environ.get("SQUALL_CGROUP_ROOT", "/sys/fs/cgroup"))
CONTROLLERS = ("cpu", "memory")
CFS_PERIOD_US = 10_000  # short periods: a capped board runs slower instead of stalling for tens of ms


class TestbedError(RuntimeError):
    """A command of the testbed failed; the message names it and quotes its error."""

    __test__ = False  # not a pytest test class despite the name


class TestbedUnavailable(TestbedError):
    """This machine cannot host the testbed (no root, no ip/tc, no cgroup v1 controllers)."""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise TestbedError(f"`{' '.join(args)}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def unavailable_reason() -> str | None:
    """Why the testbed cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the testbed needs root (network namespaces, tc and cgroups)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"the testbed needs `{tool}` (iproute2)"
    for ctl in CONTROLLERS:
        if not (CGROUP_ROOT / ctl / "cgroup.procs").exists():
            return f"the testbed needs the cgroup v1 {ctl} controller at {CGROUP_ROOT / ctl}"
    return None


def delay_unavailable_reason() -> str | None:
    """Why link delay cannot be emulated here (it needs iptables' nat REDIRECT in the
    namespaces), or None when it can."""
    if shutil.which("iptables") is None:
        return (
            "emulated link delay needs `iptables` (nat REDIRECT into the delay relay); install it, "
            "or give every board delay_ms 0 and jitter_ms 0"
        )
    return None


# -- making --------------------------------------------------------------------------------


def add_bridge(name: str, address: str) -> None:
    sh("ip", "link", "add", name, "type", "bridge")
    sh("ip", "addr", "add", f"{address}/24", "dev", name)
    sh("ip", "link", "set", name, "up")


def add_namespace(ns: str) -> None:
    sh("ip", "netns", "add", ns)
    sh("ip", "-n", ns, "link", "set", "lo", "up")


def add_link(ns: str, host_end: str, board_end: str, bridge: str, address: str) -> None:
    """A veth pair: ``host_end`` on the bridge, ``board_end`` in ``ns`` holding ``address``."""
    sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", board_end)
    sh("ip", "link", "set", board_end, "netns", ns)
    sh("ip", "link", "set", host_end, "master", bridge)
    sh("ip", "link", "set", host_end, "up")
    sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", board_end)
    sh("ip", "-n", ns, "link", "set", board_end, "up")


def tbf_args(mbit: float) -> list[str]:
    """tbf parameters for ``mbit``: a burst of 10 ms of traffic (at least a few full frames,
    so the bucket can pass one) and up to 50 ms of queue before drops."""
    burst = max(int(mbit * 1e6 / 8 / 100), 4 * 1514)
    return ["tbf", "rate", f"{mbit:g}mbit", "burst", str(burst), "latency", "50ms"]


def limit_link(ns: str, host_end: str, board_end: str, mbit: float) -> None:
    """Rate-limit both directions: egress of the board's end (its uplink) and egress of the
    bridge's end (its downlink)."""
    sh("tc", "qdisc", "replace", "dev", host_end, "root", *tbf_args(mbit))
    sh("tc", "-n", ns, "qdisc", "replace", "dev", board_end, "root", *tbf_args(mbit))


def redirect_to_relay(ns: str, peers: list[str], relay_port: int, mark: int) -> None:
    """In ``ns``, send every TCP connection to one of ``peers`` (the other boards' addresses)
    to the delay relay on ``relay_port`` — except the relay's own, which carry ``mark``.
    The rules live in the namespace and go with it."""
    for peer in peers:
        sh(
            "ip",
            "netns",
            "exec",
            ns,
            "iptables",
            "-w",
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            f"{peer}/32",
            "-m",
            "mark",
            "!",
            "--mark",
            str(mark),
            "-j",
            "REDIRECT",
            "--to-ports",
            str(relay_port),
        )


def redirect_rules(ns: str) -> list[str]:
    """The nat OUTPUT rules in ``ns`` (iptables -S lines), for status and tests."""
    out = sh("ip", "netns", "exec", ns, "iptables", "-w", "-t", "nat", "-S", "OUTPUT", check=False).stdout
    return [line for line in out.splitlines() if "REDIRECT" in line]


def add_cgroup(name: str, cpu: float, memory_mb: int) -> None:
    for ctl in CONTROLLERS:
        (CGROUP_ROOT / ctl / name).mkdir(exist_ok=True)
    cpu_dir = CGROUP_ROOT / "cpu" / name
    (cpu_dir / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
    (cpu_dir / "cpu.cfs_quota_us").write_text(str(max(1000, int(cpu * CFS_PERIOD_US))))
    (CGROUP_ROOT / "memory" / name / "memory.limit_in_bytes").write_text(str(memory_mb * 1024 * 1024))


def cgroup_join_prefix(name: str) -> list[str]:
    """A command prefix that moves the process into the cgroup ``name`` of every controller
    before it execs the rest (its children, the workers, inherit the groups)."""
    writes = " && ".join(f"echo $$ > {CGROUP_ROOT / ctl / name / 'cgroup.procs'}" for ctl in CONTROLLERS)
    return ["sh", "-c", f'{writes} && exec "$@"', "sh"]


# -- finding and removing --------------------------------------------------------------------


def namespaces(prefix: str) -> list[str]:
    out = sh("ip", "netns", "list", check=False).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.split() and line.split()[0].startswith(prefix))


def links(prefix: str) -> list[str]:
    out = sh("ip", "-o", "link", "show", check=False).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) > 2:
            name = parts[1].strip().split("@")[0]
            if name.startswith(prefix):
                names.append(name)
    return sorted(names)


def qdiscs(prefix: str) -> list[str]:
    """Non-default qdiscs on any link named with the prefix, here or in its namespaces."""
    found = []
    outputs = [sh("tc", "qdisc", "show", check=False).stdout]
    outputs += [sh("tc", "-n", ns, "qdisc", "show", check=False).stdout for ns in namespaces(prefix)]
    for out in outputs:
        for line in out.splitlines():
            words = line.split()
            if "tbf" in words and "dev" in words:
                dev = words[words.index("dev") + 1]
                if dev.startswith(prefix):
                    found.append(f"{words[1]} on {dev}")
    return sorted(set(found))


def cgroups(prefix: str) -> list[str]:
    found = []
    for ctl in CONTROLLERS:
        base = CGROUP_ROOT / ctl
        if base.is_dir():
            found += [f"{ctl}/{p.name}" for p in sorted(base.iterdir()) if p.is_dir() and p.name.startswith(prefix)]
    return found


def leftovers(prefix: str) -> dict[str, list[str]]:
    """Everything named with ``prefix`` that exists now (empty lists when clean)."""
    return {
        "namespaces": namespaces(prefix),
        "links": links(prefix),
        "qdiscs": qdiscs(prefix),
        "cgroups": cgroups(prefix),
    }


def pids_in(prefix: str) -> set[int]:
    """Processes inside the prefix's namespaces or cgroups (supervisors and their workers)."""
    pids: set[int] = set()
    for ns in namespaces(prefix):
        pids |= {int(p) for p in sh("ip", "netns", "pids", ns, check=False).stdout.split() if p.isdigit()}
    for group in cgroups(prefix):
        try:
            pids |= {int(p) for p in (CGROUP_ROOT / group / "cgroup.procs").read_text().split()}
        except OSError:
            continue
    return pids


def stop_pids(pids: set[int], grace_s: float = 8.0) -> None:
    """SIGTERM, then SIGKILL whatever still runs after ``grace_s``."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        alive = {p for p in pids if _alive(p)}
        for p in alive:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            alive = {p for p in alive if _alive(p)}
            time.sleep(0.1)
        if not alive:
            return


def is_squall(pid: int) -> bool:
    try:
        return b"squall" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, /proc/PID/stat field 22), None when no
    such process: with the pid it names one process, whatever pids are reused since."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().split(")")[-1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def subnet_users(subnet: str) -> list[str]:
    """``interface address`` of every address here inside ``subnet``.0/24 (any namespace's
    own addresses are not listed: only this one's, where a testbed's bridge goes)."""
    out = sh("ip", "-4", "-o", "addr", "show", check=False).stdout
    users = []
    for line in out.splitlines():
        words = line.split()
        if "inet" in words:
            address = words[words.index("inet") + 1]
            if address.startswith(f"{subnet}."):
                users.append(f"{words[1]} {address}")
    return users


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap our own children, so they do not linger as zombies
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def remove_all(prefix: str, names: dict[str, list[str]] | None = None) -> list[str]:
    """Remove the namespaces, links (their qdiscs go with them) and cgroups named in
    ``names`` and every other one starting with ``prefix``; returns what was removed."""
    names = names or {}
    removed = []
    for ns in sorted(set(names.get("namespaces", [])) | set(namespaces(prefix))):
        if sh("ip", "netns", "del", ns, check=False).returncode == 0:
            removed.append(f"namespace {ns}")
    for link in sorted(set(names.get("links", [])) | set(links(prefix))):
        if sh("ip", "link", "del", link, check=False).returncode == 0:
            removed.append(f"link {link}")
    for group in sorted(set(names.get("cgroups", [])) | set(cgroups(prefix))):
        path = CGROUP_ROOT / group
        for _ in range(50):  # a group empties a moment after its last process exits
            try:
                path.rmdir()
                removed.append(f"cgroup {group}")
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
    return removed
