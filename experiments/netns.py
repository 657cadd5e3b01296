"""The kernel objects of the testbed: network namespaces, a bridge, veth pairs, HTB qdiscs
(a priority class for DSCP-marked control traffic, as Wi-Fi's WMM gives it) and cgroup v1
cpu/memory groups — made with ``ip``, ``tc`` and the cgroup file system.

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


# How each link honours the control plane's mark (squall.control_mark), the way Wi-Fi's WMM
# does: an HTB root at the link's rate with two classes, since this kernel has HTB and the
# u32 classifier but not the prio qdisc. Packets whose TOS precedence is 4-7 (DSCP 32-63:
# the video and voice access categories under the usual DSCP-to-WMM mapping, CS5 among
# them) go to the priority class, everything else to best effort.
ROOT_CLASS, PRIORITY_CLASS, BEST_EFFORT_CLASS = "1:1", "1:10", "1:20"
PRIORITY_SHARE = 0.1  # the priority class's guaranteed share; it borrows up to the whole link
# Best effort's floor: what data keeps while marked traffic would take the whole link (WMM's
# best-effort category still wins some contention against video). The rest of the link goes
# to whichever class has packets, the priority class first: marked traffic, a migration's
# megabytes of snapshots included, gets 90% of a saturated link, not 10%.
BEST_EFFORT_FLOOR = 0.1
PRIORITY_TOS, PRIORITY_TOS_MASK = "0x80", "0x80"  # the TOS byte's top bit: precedence 4-7
QUEUE_S = 0.05  # each class queues at most 50 ms of the link's traffic (plus a burst), like the tbf before


def link_burst_bytes(mbit: float) -> int:
    """10 ms of traffic, at least a few full frames (so the bucket can pass one)."""
    return max(int(mbit * 1e6 / 8 / 100), 4 * 1514)


def link_shaping(mbit: float) -> list[list[str]]:
    """The ``tc`` commands (their arguments after ``tc``; ``{dev}`` stands for the device)
    that shape one direction of a link at ``mbit``: the HTB root and its class at
    the link's rate; the priority class (``PRIORITY_SHARE`` of the rate guaranteed, and
    served first from the rest: HTB prio 0, up to the whole rate); the best-effort class
    (``BEST_EFFORT_FLOOR`` guaranteed, what the marks leave, up to the whole rate when they
    are idle: prio 1); a byte FIFO of
    ``QUEUE_S`` of traffic plus a burst under each (the queue the tbf had, so a saturated
    link drops as before); and the u32 filter that sends marked packets to the priority
    class. Nothing is marked by the testbed: it honours what the sockets set."""
    rate, burst = mbit * 1e6, link_burst_bytes(mbit)
    queue = int(rate / 8 * QUEUE_S) + burst
    priority = rate * PRIORITY_SHARE

    def htb_class(parent: str, classid: str, bits: float, ceil: float, prio: int | None) -> list[str]:
        args = ["class", "add", "dev", "{dev}", "parent", parent, "classid", classid, "htb"]
        args += ["rate", f"{bits:.0f}bit", "ceil", f"{ceil:.0f}bit", "burst", str(burst), "cburst", str(burst)]
        return args + (["prio", str(prio), "quantum", str(4 * 1514)] if prio is not None else [])

    return [
        ["qdisc", "replace", "dev", "{dev}", "root", "handle", "1:", "htb", "default", BEST_EFFORT_CLASS.split(":")[1]],
        htb_class("1:", ROOT_CLASS, rate, rate, None),
        htb_class(ROOT_CLASS, PRIORITY_CLASS, priority, rate, 0),
        htb_class(ROOT_CLASS, BEST_EFFORT_CLASS, rate * BEST_EFFORT_FLOOR, rate, 1),
        ["qdisc", "add", "dev", "{dev}", "parent", PRIORITY_CLASS, "handle", "10:", "bfifo", "limit", str(queue)],
        ["qdisc", "add", "dev", "{dev}", "parent", BEST_EFFORT_CLASS, "handle", "20:", "bfifo", "limit", str(queue)],
        ["filter", "add", "dev", "{dev}", "parent", "1:", "protocol", "ip", "prio", "1", "u32"]
        + ["match", "ip", "tos", PRIORITY_TOS, PRIORITY_TOS_MASK, "flowid", PRIORITY_CLASS],
    ]


def limit_link(ns: str, host_end: str, board_end: str, mbit: float) -> None:
    """Shape both directions (:func:`link_shaping`): egress of the board's end (its uplink)
    and egress of the bridge's end (its downlink).

    Both ends first stop taking segmentation offload (``gso_max_segs 1``): a veth otherwise
    hands the qdisc TCP "packets" of up to 64 KiB, which a queue of 50 ms at 1 Mbit/s
    (12 KB) drops whole — the tbf before cut them into frames itself, HTB does not. A real
    link carries frames, and so does this one now."""
    sh("ip", "link", "set", "dev", host_end, "gso_max_segs", "1")
    sh("ip", "-n", ns, "link", "set", "dev", board_end, "gso_max_segs", "1")
    for args in link_shaping(mbit):
        sh("tc", *[host_end if a == "{dev}" else a for a in args])
        sh("tc", "-n", ns, *[board_end if a == "{dev}" else a for a in args])


def class_counters(dev: str, ns: str | None = None) -> dict[str, dict[str, int]]:
    """Per HTB class of ``dev`` (in ``ns``, or here): bytes and packets it sent and packets
    it dropped so far, from ``tc -s class show``; empty when the device is gone."""
    where = ["-n", ns] if ns else []
    out = sh("tc", *where, "-s", "class", "show", "dev", dev, check=False).stdout
    counters: dict[str, dict[str, int]] = {}
    current = None
    for line in out.splitlines():
        words = line.split()
        if len(words) > 2 and words[0] == "class" and words[1] == "htb":
            current = counters.setdefault(words[2], {})
        elif current is not None and words[:1] == ["Sent"] and len(words) >= 7:
            current.update(bytes=int(words[1]), packets=int(words[3]), dropped=int(words[6].rstrip(",")))
    return counters


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
            if ("htb" in words or "tbf" in words) and "dev" in words and words[0] == "qdisc":
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
