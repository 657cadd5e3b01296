"""``BoardReader``: a board's CPU, capacity, throttling and memory from fake /proc and /sys
trees (cgroup v1 with and without cpuacct, cgroup v2, no cgroup) and once on this machine."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from squall.messages import BoardMetrics, Heartbeat
from squall.supervisor.board_metrics import BoardReader, find_cgroups
from squall.wire import decode, encode

V1_MOUNTS = """\
25 24 0:22 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
26 24 0:23 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
27 24 0:24 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
28 24 0:25 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V2_MOUNTS = "30 24 0:26 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_proc(root: Path, cgroup: str, mounts: str) -> None:
    write(root / "proc/self/cgroup", cgroup)
    write(root / "proc/self/mountinfo", mounts)


def reader(root: Path) -> BoardReader:
    return BoardReader(root, clock=lambda: 42.0, usable_cores=lambda: 4)


def cgroup_metrics(
    cpu_s: float, cores: float, period_s: float, periods: tuple[int, int], throttled_s: float, mb: tuple[int, int]
) -> BoardMetrics:
    """What ``reader`` should read from a board's cgroup: ``periods`` is (periods,
    throttled periods), ``mb`` (memory used, memory limit) in MiB."""
    return BoardMetrics(
        at=42.0,
        cpu_s=cpu_s,
        cores=cores,
        cpu_period_s=period_s,
        periods=periods[0],
        throttled_periods=periods[1],
        throttled_s=throttled_s,
        memory_used_bytes=mb[0] << 20,
        memory_limit_bytes=mb[1] << 20,
        source="cgroup",
    )


@pytest.mark.parametrize(
    ("cgroup", "mounts", "files", "expected"),
    [
        pytest.param(
            "4:memory:/board\n3:cpuacct:/board\n2:cpu:/board\n0::/\n",
            V1_MOUNTS,
            {
                "cpuacct/board/cpuacct.usage": "2500000000\n",
                "cpu/board/cpu.cfs_quota_us": "5000\n",
                "cpu/board/cpu.cfs_period_us": "10000\n",
                "cpu/board/cpu.stat": "nr_periods 300\nnr_throttled 40\nthrottled_time 1500000000\n",
                "memory/board/memory.usage_in_bytes": str(300 << 20),
                "memory/board/memory.limit_in_bytes": str(512 << 20),
                "memory/board/memory.stat": f"cache 1\ntotal_inactive_file {100 << 20}\n",
            },
            cgroup_metrics(cpu_s=2.5, cores=0.5, period_s=0.01, periods=(300, 40), throttled_s=1.5, mb=(200, 512)),
            id="v1 with cpuacct, quota, throttling and memory limit",
        ),
        pytest.param(
            "0::/boards/b2\n",
            V2_MOUNTS,
            {
                "boards/b2/cpu.max": "25000 100000\n",
                "boards/b2/cpu.stat": "usage_usec 7000000\nuser_usec 5\nsystem_usec 2\n"
                "nr_periods 10\nnr_throttled 3\nthrottled_usec 250000\n",
                "boards/b2/memory.current": str(64 << 20),
                "boards/b2/memory.max": str(256 << 20),
                "boards/b2/memory.stat": f"anon 1\ninactive_file {4 << 20}\n",
            },
            cgroup_metrics(cpu_s=7.0, cores=0.25, period_s=0.1, periods=(10, 3), throttled_s=0.25, mb=(60, 256)),
            id="v2 with quota, throttling and memory limit",
        ),
    ],
)
def test_a_board_group_with_limits_is_read_whole(
    tmp_path: Path, cgroup: str, mounts: str, files: dict[str, str], expected: BoardMetrics
) -> None:
    """Memory used leaves out the inactive page cache (the kernel can drop it)."""
    fake_proc(tmp_path, cgroup, mounts)
    for name, text in files.items():
        write(tmp_path / "sys/fs/cgroup" / name, text)
    assert reader(tmp_path).read() == expected


def test_v1_board_without_cpuacct_sums_its_processes_and_never_goes_back(tmp_path):
    """The experiments' testbed: cpu and memory groups only. The group's processes are
    listed in cgroup.procs; one that exits keeps counting what it had used."""
    fake_proc(tmp_path, "4:memory:/board\n3:cpuacct:/\n2:cpu:/board\n", V1_MOUNTS)
    cg = tmp_path / "sys/fs/cgroup"
    write(cg / "cpu/board/cpu.cfs_quota_us", "-1\n")
    write(cg / "cpu/board/cpu.cfs_period_us", "100000\n")
    child = psutil.Popen(["python3", "-c", "sum(range(3_000_000)); import time; time.sleep(30)"])
    try:
        while psutil.Process(child.pid).cpu_times().user < 0.05:
            time.sleep(0.05)
        write(cg / "cpu/board/cgroup.procs", f"{os.getpid()}\n{child.pid}\n")
        r = reader(tmp_path)
        first = r.read()
        me = psutil.Process().cpu_times()
        them = psutil.Process(child.pid).cpu_times()
        assert first.source == "cgroup"
        assert first.cpu_s == pytest.approx(me.user + me.system + them.user + them.system, abs=0.05)
        assert first.cores == 4 and first.cpu_period_s == 0.0, "no quota: the usable cores"
        child.kill()
        child.wait()
        write(cg / "cpu/board/cgroup.procs", f"{os.getpid()}\n")
        second = r.read()
        assert second.cpu_s >= first.cpu_s, "an exited worker's CPU stays counted"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_parent_group_quota_limits_the_board(tmp_path):
    fake_proc(
        tmp_path,
        "2:cpu,cpuacct:/boards/b1\n",
        "25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
    )
    cg = tmp_path / "sys/fs/cgroup/cpu,cpuacct"
    write(cg / "boards/cpu.cfs_quota_us", "150000\n")
    write(cg / "boards/cpu.cfs_period_us", "100000\n")
    write(cg / "boards/b1/cpu.cfs_quota_us", "-1\n")
    write(cg / "boards/b1/cpu.cfs_period_us", "100000\n")
    write(cg / "boards/b1/cpuacct.usage", "1000\n")
    m = reader(tmp_path).read()
    assert (m.cores, m.cpu_period_s, m.cpu_s, m.source) == (1.5, 0.1, 1e-6, "cgroup")


def test_v2_group_without_limits_reports_its_usage_and_the_machine_capacity(tmp_path):
    fake_proc(tmp_path, "0::/user.slice\n", V2_MOUNTS)
    cg = tmp_path / "sys/fs/cgroup/user.slice"
    write(cg / "cpu.max", "max 100000\n")
    write(cg / "cpu.stat", "usage_usec 3000000\n")
    write(cg / "memory.current", "1000\n")
    write(cg / "memory.max", "max\n")
    m = reader(tmp_path).read()
    vm = psutil.virtual_memory()
    assert (m.cpu_s, m.cores, m.cpu_period_s, m.source) == (3.0, 4, 0.0, "cgroup")
    assert m.memory_limit_bytes == vm.total, "no memory limit: the machine's memory"


def test_the_root_group_is_the_whole_machine(tmp_path):
    fake_proc(tmp_path, "4:memory:/\n3:cpuacct:/\n2:cpu:/\n0::/\n", V1_MOUNTS)
    assert find_cgroups(tmp_path).cpu is None
    m = reader(tmp_path).read()
    t = psutil.cpu_times()
    assert m.source == "system" and m.cores == 4
    assert 0 < m.cpu_s <= sum(t) - t.idle + 1
    assert m.memory_limit_bytes == psutil.virtual_memory().total and 0 < m.memory_used_bytes < m.memory_limit_bytes


def test_missing_and_garbage_files_fall_back_without_raising(tmp_path):
    fake_proc(tmp_path, "garbage\n2:cpu:/board\n", "nonsense line\n" + V1_MOUNTS)
    cg = tmp_path / "sys/fs/cgroup"
    write(cg / "cpu/board/cpu.cfs_quota_us", "lots\n")
    write(cg / "cpu/board/cpu.stat", "nr_periods x\n")
    m = reader(tmp_path).read()  # cgroup.procs missing: the machine's CPU
    assert m.source == "system" and m.cores == 4 and m.periods == 0


def test_no_proc_at_all_is_the_whole_machine(tmp_path):
    m = reader(tmp_path).read()
    assert m.source == "system" and m.cpu_s > 0 and m.memory_limit_bytes > 0


def test_on_this_machine(tmp_path):
    """For real: the figures are sane, CPU grows with work, and they cross the wire."""
    r = BoardReader()
    first = r.read()
    deadline = time.thread_time() + 0.2
    while time.thread_time() < deadline:
        pass
    second = r.read()
    assert second.source in ("cgroup", "system")
    assert second.cpu_s - first.cpu_s >= 0.15, "at least the 0.2 s this test just burned"
    assert second.at > first.at
    assert 0 < second.cores <= (psutil.cpu_count() or 1)
    assert 0 < second.memory_used_bytes < second.memory_limit_bytes
    hb = Heartbeat(supervisor_id="s", seq=1, workers=[], board=second)
    assert decode(encode(hb)).board == second
