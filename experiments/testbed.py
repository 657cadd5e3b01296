"""A testbed of emulated boards on this machine, and the one interface experiments use.

::

    with Testbed(load_boards("examples/boards/pis.json")) as tb:
        tb.submit("examples/reference_chain.py", scheduler="offline")
        print(tb.client().assignment("reference-chain"))

Each board is a network namespace ``<prefix>-<id>`` with one address on the bridge
``<prefix>br`` (``<subnet>.1`` is the bridge, boards ``.2`` upwards), a veth pair
``<prefix><i>h``/``<prefix><i>n`` whose two ends are rate-limited by an HTB qdisc (the board's
link, both directions; control traffic marked with a DSCP of precedence 4-7, as Nimbus and the
supervisors mark theirs, goes first, as Wi-Fi's WMM would send it), and cgroups
``<prefix>-<id>`` in the cpu (quota) and memory (limit) controllers. Its supervisor runs
inside the namespace and the cgroups; Nimbus runs outside, bound on the bridge address.

Link delay is EMULATED in user space (the kernel here has no netem): when a board has
``delay_ms`` or ``jitter_ms``, each board's namespace runs a delay relay
(:mod:`squall.experiments.linkdelay`) and an iptables nat rule sends every TCP connection
to another board through it; a round trip between two boards then takes delay(A) +
delay(B). :meth:`Testbed.measure_rtts` times each pair's round trip through the relays.

Guarantees: every object is recorded in the state file before the next is made, so a crash
in the middle leaves a record; :func:`teardown` stops the processes and removes the recorded
objects and any other named with the prefix, and is idempotent; ``close()`` (``__exit__``,
and at interpreter exit) calls it. A testbed belongs to the process that brought it up
until that process ends (or ``detach()`` hands it to ``squall testbed down``): a teardown
from any other process refuses it (:class:`TestbedInUse`) unless forced, so a second run
with the same prefix can no longer stop the first one's Nimbus in the middle of its run and
delete its logs (the cause of "Nimbus stopped answering", docs/experiments.md). ``up()``
refuses a subnet an interface here already has (two bridges on one /24 make the host
route one testbed's packets into the other). ``Testbed`` and ``LocalCluster`` share the
:class:`squall.daemon_start.Cluster` base, and :func:`open_cluster` picks the testbed when
the machine allows and says why not when it falls back to loopback processes.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from squall.client import NimbusClient
from squall.control_mark import NIMBUS_CONTROL_DSCP, SUPERVISOR_CONTROL_DSCP, check_dscp
from squall.daemon_start import Cluster, nimbus_argv, spawn_logged, supervisor_argv, wait_registered
from squall.experiments import netns
from squall.experiments.boards import Board
from squall.experiments.netns import TestbedError, TestbedUnavailable

DEFAULT_PREFIX = "sqtb"
DEFAULT_SUBNET = "10.231.0"


def state_dir(prefix: str) -> Path:
    return Path(os.environ.get("SQUALL_TESTBED_DIR", tempfile.gettempdir())) / f"squall-testbed-{prefix}"


def read_state(prefix: str) -> dict[str, Any] | None:
    path = state_dir(prefix) / "state.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


class TestbedInUse(TestbedError):
    """A teardown asked for a testbed that a running process (not the caller) owns."""

    __test__ = False  # not a pytest test class despite the name


def owner_alive(state: dict[str, Any]) -> int | None:
    """The pid of the live process that owns the testbed (None: detached, or its owner is gone)."""
    owner = state.get("owner") or {}
    pid, started = owner.get("pid"), owner.get("started")
    if pid is None or started is None or netns.process_start(int(pid)) != started:
        return None
    return int(pid)


def teardown(prefix: str = DEFAULT_PREFIX, force: bool = False) -> list[str]:
    """Stop the testbed's processes and remove everything named with ``prefix``; returns what
    was stopped or removed (empty when nothing was there). Safe to call any number of times.

    A testbed whose owner (the process that brought it up and did not detach it) still runs
    is refused with :class:`TestbedInUse`, unless the caller is that owner or ``force``."""
    state = read_state(prefix) or {}
    owner = owner_alive(state)
    if owner is not None and owner != os.getpid() and not force:
        raise TestbedInUse(
            f"testbed {prefix!r} belongs to a running process, pid {owner} ({netns.command_line(owner)[:200]}); "
            "left alone. It is torn down when that process ends; to stop it now anyway, "
            f"`squall testbed down --prefix {prefix} --force`"
        )
    recorded = {int(p) for p in state.get("pids", {}).values()}
    # A recorded pid may have been reused since a crash: only stop what is still squall.
    pids = {p for p in recorded if netns.is_squall(p)} | netns.pids_in(prefix)
    netns.stop_pids(pids)
    done = [f"process {p}" for p in sorted(pids)]
    done += netns.remove_all(prefix, state)
    shutil.rmtree(state_dir(prefix), ignore_errors=True)
    return done


class Testbed(Cluster):
    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        boards: list[Board],
        prefix: str = DEFAULT_PREFIX,
        subnet: str = DEFAULT_SUBNET,
        port: int = 6627,
        log_level: str = "INFO",
        startup_timeout_s: float = 90.0,
        control_dscp: int | None = None,
    ) -> None:
        if not boards:
            raise ValueError("a testbed needs at least one board")
        if not prefix.isalnum() or len(prefix) > 8:
            raise ValueError("prefix must be 1-8 letters or digits (link names are at most 15 characters)")
        self.boards = list(boards)
        self.prefix, self.subnet, self.port = prefix, subnet, port
        self.log_level = log_level
        self.startup_timeout_s = startup_timeout_s
        # The mark Nimbus and the supervisors put on their control traffic (None: their
        # default, CS5; 0: unmarked, which the links then queue with the data).
        self.control_dscp = None if control_dscp is None else check_dscp(control_dscp, "control_dscp")
        self.dir = state_dir(prefix)
        self.log_dir = self.dir
        self.state: dict[str, Any] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}  # the daemons this process started
        self._closed = True

    # -- addresses -------------------------------------------------------------------------

    @property
    def bridge_address(self) -> str:
        return f"{self.subnet}.1"

    @property
    def nimbus_address(self) -> str:
        return f"{self.bridge_address}:{self.port}"

    @property
    def node_ids(self) -> list[str]:
        return [b.id for b in self.boards]

    def address_of(self, board: Board) -> str:
        return f"{self.subnet}.{self.boards.index(board) + 2}"

    def namespace_of(self, board: Board) -> str:
        return f"{self.prefix}-{board.id}"

    def describe(self) -> str:
        lines = [f"testbed {self.prefix}: bridge {self.prefix}br {self.bridge_address}, Nimbus {self.nimbus_address}"]
        if self.emulates_delay:
            lines.append(
                "  link delay: EMULATED by a userspace TCP relay per board (no netem in this kernel); "
                "a round trip between two boards = delay(A) + delay(B)"
            )
        for b in self.boards:
            lines.append(
                f"  {b.id:<8} {b.board_class}  {self.address_of(b):<12} netns {self.namespace_of(b)}  "
                f"{b.link} {b.link_mbit:g} Mbit/s delay {b.delay_ms:g}±{b.jitter_ms:g} ms"
                f"{self._measured_note(b)}  "
                f"cpu {b.cpu:g} core  memory {b.memory_mb} MB  "
                f"slots {b.slots}  capacity {b.capacity_hz(self.clock_hz) / 1e9:.2f} GHz"
            )
        return "\n".join(lines)

    def _measured_note(self, board: Board) -> str:
        measured = self.state.get("link_delay_ms", {}).get(board.id)
        return "" if measured is None else f" (measured {measured:.3g} ms one way, declared to Nimbus)"

    @property
    def clock_hz(self) -> float:
        from squall.supervisor.facts import read_clock_hz

        return read_clock_hz()[0]

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Testbed:
        self.up()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _record(self, kind: str, name: str) -> None:
        self.state.setdefault(kind, []).append(name)
        self._save()

    def _save(self) -> None:
        tmp = self.dir / "state.json.tmp"
        tmp.write_text(json.dumps(self.state, indent=1))
        tmp.replace(self.dir / "state.json")

    def up(self) -> None:
        reason = netns.unavailable_reason()
        if reason:
            raise TestbedUnavailable(reason)
        if read_state(self.prefix) is not None or any(netns.leftovers(self.prefix).values()):
            raise TestbedError(
                f"a testbed with prefix {self.prefix!r} is already up (or left over); "
                f"run `squall testbed down --prefix {self.prefix}` first"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        taken = netns.subnet_users(self.subnet)
        if taken:
            raise TestbedError(
                f"subnet {self.subnet}.0/24 is already in use here ({', '.join(taken)}): a second bridge on it "
                "would route one testbed's packets into the other; pick another subnet"
            )
        self.state = {
            "prefix": self.prefix,
            "subnet": self.subnet,
            "nimbus": self.nimbus_address,
            "boards": [b.to_dict() for b in self.boards],
            "pids": {},
            "owner": {"pid": os.getpid(), "started": netns.process_start(os.getpid())},
        }
        self._save()
        self._closed = False
        atexit.register(self.close)
        try:
            self._make_network()
            self._start_delay_relays()
            self._measure_link_delays()
            self._start_daemons()
            self.wait_ready(self.startup_timeout_s)
        except BaseException:
            self.close()
            raise

    def _make_network(self) -> None:
        bridge = f"{self.prefix}br"
        self._record("links", bridge)
        netns.add_bridge(bridge, self.bridge_address)
        for i, b in enumerate(self.boards):
            ns, host_end, board_end = self.namespace_of(b), f"{self.prefix}{i}h", f"{self.prefix}{i}n"
            self._record("namespaces", ns)
            netns.add_namespace(ns)
            self._record("links", host_end)
            netns.add_link(ns, host_end, board_end, bridge, self.address_of(b))
            netns.limit_link(ns, host_end, board_end, b.link_mbit)
            for ctl in netns.CONTROLLERS:
                self._record("cgroups", f"{ctl}/{ns}")
            netns.add_cgroup(ns, b.cpu, b.memory_mb)

    @property
    def emulates_delay(self) -> bool:
        return any(b.delay_ms > 0 or b.jitter_ms > 0 for b in self.boards)

    def _start_delay_relays(self) -> None:
        """One relay per board, in its namespace but outside its cgroups (it plays the
        network, not the board), then the rules that send other boards' TCP through it."""
        if not self.emulates_delay:
            return
        reason = netns.delay_unavailable_reason()
        if reason:
            raise TestbedUnavailable(reason)
        from squall.experiments.linkdelay import RELAY_MARK, LinkDelay, format_links

        links = format_links({self.address_of(b): LinkDelay(b.delay_ms, b.jitter_ms) for b in self.boards})
        for b in self.boards:
            ports_file = self.dir / f"relay-{b.id}.json"
            self._spawn(
                f"relay-{b.id}",
                [
                    "ip",
                    "netns",
                    "exec",
                    self.namespace_of(b),
                    sys.executable,
                    "-P",
                    "-m",
                    "squall.experiments.linkdelay",
                    "serve",
                    "--own",
                    self.address_of(b),
                    "--links",
                    links,
                    "--ports-file",
                    str(ports_file),
                ],
            )
        deadline = time.monotonic() + 20.0
        relays: dict[str, dict[str, int]] = {}
        for b in self.boards:
            ports_file = self.dir / f"relay-{b.id}.json"
            while not ports_file.exists():
                if time.monotonic() > deadline or not netns._alive(self.state["pids"][f"relay-{b.id}"]):
                    raise TestbedError(f"the delay relay of {b.id} did not start:\n{self.log('relay-' + b.id)[-2000:]}")
                time.sleep(0.05)
            relays[b.id] = json.loads(ports_file.read_text())
            peers = [self.address_of(o) for o in self.boards if o is not b]
            netns.redirect_to_relay(self.namespace_of(b), peers, relays[b.id]["relay"], RELAY_MARK)
        self.state["relays"] = relays
        self._save()

    def _measure_link_delays(self) -> None:
        """What each board's emulated link really adds, one way: the board file's delay
        plus the relay's own forwarding (tens of microseconds on an idle machine, more on
        a busy one), fitted to the measured round trips. Supervisors declare it as their
        link delay, so the latency model prices the links the experiments cross, not the
        ones the board file asks for."""
        if not self.emulates_delay:
            return
        measured = fit_one_way_delays([b.id for b in self.boards], self.measure_rtts(count=20))
        self.state["link_delay_ms"] = measured
        self._save()

    def link_delay_ms(self, board: Board) -> float:
        """The one-way delay ``board``'s supervisor declares: measured when emulated."""
        return float(self.state.get("link_delay_ms", {}).get(board.id, board.delay_ms))

    def measure_rtts(self, count: int = 20) -> list[dict[str, Any]]:
        """Each ordered board pair's TCP round trip through the emulated links: ``count``
        small messages from a client in A's namespace to B's echo (median, min, max in ms),
        and the round trip the board file asks for (delay(A) + delay(B))."""
        relays = self.state.get("relays") or (read_state(self.prefix) or {}).get("relays") or {}
        out = []
        for a in self.boards:
            for b in self.boards:
                if a is b or b.id not in relays:
                    continue
                proc = subprocess.run(
                    [
                        "ip",
                        "netns",
                        "exec",
                        self.namespace_of(a),
                        sys.executable,
                        "-P",
                        "-m",
                        "squall.experiments.linkdelay",
                        "ping",
                        f"{self.address_of(b)}:{relays[b.id]['echo']}",
                        "--count",
                        str(count),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                row: dict[str, Any] = {"from": a.id, "to": b.id, "expected_ms": a.delay_ms + b.delay_ms}
                if proc.returncode == 0:
                    row.update(json.loads(proc.stdout))
                else:
                    row["error"] = (proc.stderr.strip().splitlines() or ["ping failed"])[-1]
                out.append(row)
        return out

    def _spawn(self, name: str, argv: list[str]) -> int:
        proc = spawn_logged(argv, self.dir / f"{name}.log", new_session=True)
        self._procs[name] = proc
        self.state["pids"][name] = proc.pid
        self._save()
        return proc.pid

    def _start_daemons(self) -> None:
        # --insecure: the daemons listen on the testbed's own bridge, which only this machine's
        # namespaces reach, and the testbed has no cluster keys.
        extra = ["--log-level", self.log_level, "--insecure"]
        if self.control_dscp is not None:
            extra += ["--set", f"{NIMBUS_CONTROL_DSCP}={self.control_dscp}"]
        self._spawn("nimbus", nimbus_argv(self.bridge_address, self.port, self.dir / "nimbus", extra=extra))
        clock = self.clock_hz
        for b in self.boards:
            ns = self.namespace_of(b)
            # nsenter, not `ip netns exec`: that one also remounts /sys in a mount namespace of
            # its own, which hides /sys/fs/cgroup, so the supervisor could not read its
            # board's quota, usage and throttling (it would report the whole machine).
            extra = [
                "--host",
                self.address_of(b),
                "--capacity-hz",
                f"{b.capacity_hz(clock):.6g}",
                "--link-mbit",
                f"{b.link_mbit:g}",
                "--link-delay-ms",
                f"{self.link_delay_ms(b):.4g}",
                "--log-level",
                self.log_level,
                "--insecure",
            ]
            if self.control_dscp is not None:
                extra += ["--set", f"{SUPERVISOR_CONTROL_DSCP}={self.control_dscp}"]
            enter = [*netns.cgroup_join_prefix(ns), "nsenter", f"--net=/var/run/netns/{ns}"]
            self._spawn(
                b.id, [*enter, *supervisor_argv(self.nimbus_address, b.id, b.slots, self.dir / b.id, extra=extra)]
            )

    def wait_ready(self, timeout_s: float) -> None:
        wait_registered(self.client, self.node_ids, timeout_s, "testbed", self._check_running, poll_s=0.3)

    def _check_running(self) -> None:
        """Raise with its log when a daemon of the testbed has exited."""
        for name, pid in self.state["pids"].items():
            if not netns._alive(pid):
                raise TestbedError(f"{name} exited during start-up:\n{self.log_tail(name)}")

    def detach(self) -> None:
        """Leave the testbed running after this process exits (``squall testbed up``);
        ``squall testbed down`` removes it (it has no owner any more)."""
        self._closed = True
        self.state["owner"] = None
        self._save()

    def close(self) -> list[str]:
        if self._closed:
            return []
        self._closed = True
        return teardown(self.prefix, force=True)  # ours, whoever owns the state file now

    # -- the Cluster interface -------------------------------------------------------------

    def client(self, timeout_s: float = 5.0) -> NimbusClient:
        return NimbusClient(self.nimbus_address, timeout_s=timeout_s)

    def nimbus_alive(self) -> bool:
        proc = self._procs.get("nimbus")
        if proc is not None:
            return proc.poll() is None
        pid = self.state.get("pids", {}).get("nimbus")
        return pid is not None and netns._alive(pid)

    def nimbus_exit(self) -> str:
        """How this testbed's Nimbus ended ("" while it runs or when not started here): a
        signal names who to suspect (SIGTERM: a teardown or a `kill`; SIGKILL: the OOM killer
        or a forced stop), a status a crash (its log has the traceback)."""
        proc = self._procs.get("nimbus")
        code = None if proc is None else proc.poll()
        if code is None:
            return ""
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def keep_logs(self, dest: Path) -> None:
        """Copy the daemons' logs (Nimbus, each supervisor, their workers) to ``dest``."""
        for log in self.dir.rglob("*.log"):
            target = dest / log.relative_to(self.dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, target)

    def throttled_s(self) -> dict[str, float]:
        """Seconds each board's CPU cap has held it back so far (cgroup cpu.stat)."""
        out = {}
        for b in self.boards:
            try:
                stat = (netns.CGROUP_ROOT / "cpu" / self.namespace_of(b) / "cpu.stat").read_text().split()
                out[b.id] = int(stat[stat.index("throttled_time") + 1]) / 1e9
            except (OSError, ValueError, IndexError):
                continue
        return out

    def link_bytes(self) -> int:
        """Bytes the boards have sent on their links so far (received by the bridge's ends;
        includes heartbeats to Nimbus, which are small)."""
        total = 0
        for i in range(len(self.boards)):
            try:
                total += int(Path(f"/sys/class/net/{self.prefix}{i}h/statistics/rx_bytes").read_text())
            except (OSError, ValueError):
                continue
        return total

    def link_counters(self) -> dict[str, tuple[int, int]]:
        """Per board, (bytes it sent up its link, bytes sent down to it) so far: the bridge
        end's receive and transmit counters."""
        out = {}
        for i, b in enumerate(self.boards):
            base = Path(f"/sys/class/net/{self.prefix}{i}h/statistics")
            try:
                out[b.id] = (int((base / "rx_bytes").read_text()), int((base / "tx_bytes").read_text()))
            except (OSError, ValueError):
                continue
        return out

    def link_classes(self) -> dict[str, dict[str, dict[str, dict[str, int]]]]:
        """Per board, per direction (``up``: its end's egress; ``down``: the bridge end's),
        the HTB classes' counters (:func:`netns.class_counters`): how much of the link's
        traffic went to the priority class (marked control traffic) and to best effort,
        and what each dropped."""
        out = {}
        for i, b in enumerate(self.boards):
            out[b.id] = {
                "up": netns.class_counters(f"{self.prefix}{i}n", self.namespace_of(b)),
                "down": netns.class_counters(f"{self.prefix}{i}h"),
            }
        return out

    def link_mbit(self) -> dict[str, float]:
        return {b.id: b.link_mbit for b in self.boards}


def open_cluster(
    boards: list[Board],
    prefix: str = DEFAULT_PREFIX,
    subnet: str = DEFAULT_SUBNET,
    loopback: bool = False,
    say: Any = print,
    port: int = 6627,
) -> Cluster:
    """A started Testbed of ``boards``, or — without root, or when ``loopback`` — a
    LocalCluster with one supervisor per board (uniform slots, no caps, no link limits)."""
    reason = "asked for loopback processes" if loopback else netns.unavailable_reason()
    if reason is None:
        tb = Testbed(boards, prefix=prefix, subnet=subnet, port=port)
        tb.up()
        return tb
    from squall.localcluster import LocalCluster

    slots = max(1, round(sum(b.slots for b in boards) / len(boards)))
    say(
        f"no emulated boards ({reason}): falling back to {len(boards)} loopback supervisors "
        f"with {slots} slots each and no CPU, memory or link limits"
    )
    cluster = LocalCluster(supervisors=len(boards), slots=slots, log_level="WARNING")
    cluster.start()
    return cluster


def fit_one_way_delays(board_ids: list[str], rtts: list[dict[str, Any]]) -> dict[str, float]:
    """Per board, the one-way delay d that best explains the median round trips measured
    between board pairs (rtt(A, B) = d(A) + d(B), least squares, never below 0). A board
    with no measured pair is left out (it keeps its board file's delay)."""
    import numpy as np

    index = {b: k for k, b in enumerate(board_ids)}
    rows, rhs = [], []
    for r in rtts:
        if "median_ms" not in r or r.get("from") not in index or r.get("to") not in index:
            continue
        row = [0.0] * len(board_ids)
        row[index[r["from"]]] += 1.0
        row[index[r["to"]]] += 1.0
        rows.append(row)
        rhs.append(float(r["median_ms"]))
    seen = {b for r in rtts if "median_ms" in r for b in (r.get("from"), r.get("to"))}
    if not rows:
        return {}
    solution, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    return {b: round(max(0.0, float(solution[k])), 4) for b, k in index.items() if b in seen}
