"""Store integrity: memory changes only after the commit; every way a data directory can be
unusable stops Nimbus with exit 2 naming the file and the fix; one Nimbus per directory;
bundles fsynced, checked on read, leftovers cleaned.

Findings reproduced: a corrupt ``nimbus.db``, a read-only data dir, another schema and one
bad row each stopped Nimbus with a raw traceback; on a full disk a kill answered an error
while memory moved the topology to KILLING (it came back after a restart); two Nimbuses
opened one data dir; bundles were written without fsync; killed writes left ``.tmp`` files
forever; a damaged bundle was served.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from squall import messages as M
from squall.nimbus.records import KILLING
from squall.nimbus.store import DB_NAME, Store, StoreError
from tests.nimbus.nimbus_helpers import CLI, new_state, register, reply, submit

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


def run_nimbus(data_dir: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    """``squall nimbus`` on ``data_dir``; each case here must stop it at start-up."""
    return subprocess.run(
        [sys.executable, "-m", "squall", "nimbus", "--port", "1", "--http-port", "0", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "SQUALL_KEYS"},
    )


def a_store_with_one_topology(data_dir: Path) -> None:
    st = new_state(Store.open(data_dir))
    register(st, "n1", [6700, 6701], 0.0)
    assert reply(submit(st, "t", 0.0)).ok
    st.store.close()


def run_nimbus_after(data: Path, sql: str) -> subprocess.CompletedProcess:
    """``run_nimbus`` on ``data`` once ``sql`` has changed its database behind the store's back."""
    db = sqlite3.connect(data / DB_NAME)
    db.execute(sql)
    db.commit()
    db.close()
    return run_nimbus(data)


def test_a_corrupt_database_is_exit_2_naming_the_file_and_the_fix(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    done = run_nimbus(data)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert str(data / DB_NAME) in done.stderr and "move it away" in done.stderr


def test_another_schema_is_exit_2(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    done = run_nimbus_after(data, "CREATE TABLE supervisors (id TEXT PRIMARY KEY, colour TEXT)")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "table supervisors lacks column" in done.stderr and str(data / DB_NAME) in done.stderr


def test_a_newer_schema_is_exit_2(tmp_path):
    data = tmp_path / "d"
    Store.open(data).close()
    done = run_nimbus_after(data, "PRAGMA user_version = 99")
    assert done.returncode == 2 and "newer Squall" in done.stderr, done.stderr


def test_one_bad_row_is_exit_2_naming_the_row(tmp_path):
    data = tmp_path / "d"
    a_store_with_one_topology(data)
    done = run_nimbus_after(data, "UPDATE topologies SET spec = '{not json' WHERE name = 't'")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "row 't' of table topologies" in done.stderr and "DELETE FROM topologies WHERE name = 't'" in done.stderr


def test_a_second_nimbus_on_the_same_data_dir_is_refused(tmp_path):
    data = tmp_path / "d"
    first = Store.open(data)
    try:
        with pytest.raises(StoreError, match=f"in use by another Nimbus \\(pid {os.getpid()}\\)"):
            Store.open(data)
        done = run_nimbus(data)
        assert done.returncode == 2 and "in use by another Nimbus" in done.stderr, done.stderr
    finally:
        first.close()
    Store.open(data).close()  # closed: free again


@pytest.fixture
def read_only_dir(tmp_path):
    """A data directory on a read-only bind mount (a chmod does not stop root)."""
    data = tmp_path / "d"
    a_store_with_one_topology(data)
    if os.geteuid() != 0:
        data.chmod(0o555)
        (data / DB_NAME).chmod(0o444)
        yield data
        data.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", str(data), str(data)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount: {mounted.stderr!r}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(data)], check=True, capture_output=True)
        yield data
    finally:
        subprocess.run(["umount", str(data)], capture_output=True)


def test_a_read_only_data_dir_is_exit_2(read_only_dir):
    done = run_nimbus(read_only_dir)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert str(read_only_dir) in done.stderr and "writable" in done.stderr


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs: a data directory whose disk can really be filled."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr!r}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(mnt: Path) -> None:
    with open(mnt / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def test_a_kill_on_a_full_disk_changes_nothing_in_memory_or_on_disk(small_disk):
    store = Store.open(small_disk / "d")
    st = new_state(store)
    register(st, "n1", [6700, 6701], 0.0)
    assert reply(submit(st, "t", 0.0)).ok
    before = st.topologies["t"].phase
    fill(small_disk)
    cmds = st.handle(CLI, M.KillTopology(rid=7, name="t", wait_s=30.0), 1.0)
    answer = reply(cmds)
    assert not answer.ok and "could not save" in answer.error and "full" in answer.error, answer
    assert not any(isinstance(c.msg, M.SupervisorAssignment) for c in cmds)  # nothing pushed
    assert st.topologies["t"].phase == before != KILLING and st.counters["store_errors"] == 1
    store.close()
    (small_disk / "filler").unlink()
    again = new_state(Store.open(small_disk / "d"))
    assert again.topologies["t"].phase == before  # memory and disk agree after a restart too
    again.store.close()


def test_bundles_are_checked_on_read_and_leftovers_removed(tmp_path):
    store = Store.open(tmp_path / "d")
    digest = store.put_bundle(b"good code")
    blobs = tmp_path / "d" / "blobs"
    (blobs / digest).write_bytes(b"evil code")  # damaged (or replaced) on disk
    assert store.get_bundle(digest) is None
    assert store.put_bundle(b"good code") == digest and store.get_bundle(digest) == b"good code"  # repaired
    (blobs / f".{digest}.123.tmp").write_bytes(b"half a bun")
    store.close()
    Store.open(tmp_path / "d").close()
    assert [p.name for p in blobs.iterdir()] == [digest]


def test_a_bundle_is_on_disk_before_its_name_points_at_it(tmp_path, monkeypatch):
    """The finding: bundles were written without fsync, so a power cut (a board's usual way to
    stop) could leave a stored name over empty or partial content. Now: the content is
    fsynced, then renamed into place, then the folder is fsynced (the rename is durable)."""
    store = Store.open(tmp_path / "d")
    blobs = tmp_path / "d" / "blobs"
    steps: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        steps.append(("rename", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    digest = store.put_bundle(b"the topology's code")
    store.close()
    kinds = [kind for kind, _ in steps]
    assert kinds == ["fsync", "rename", "fsync"], steps
    assert Path(steps[0][1]).name.endswith(".tmp") and steps[1][1] == digest
    assert Path(steps[2][1]) == blobs.resolve()
    assert (blobs / digest).read_bytes() == b"the topology's code"


def test_the_loops_commits_leave_checkpoints_to_their_own_thread(tmp_path, monkeypatch):
    """A commit that crosses SQLite's WAL threshold used to checkpoint (fsync) inline, on
    Nimbus's loop; now the loop's connection never checkpoints and a thread does."""
    from squall.nimbus import store as store_module

    monkeypatch.setattr(store_module, "CHECKPOINT_S", 0.05)
    store = Store.open(tmp_path / "d")
    try:
        assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        st = new_state(store)
        register(st, "n1", [6700, 6701], 0.0)
        assert reply(submit(st, "t", 0.0)).ok
        checkpointer = store._checkpointer
        assert checkpointer is not None
        before = checkpointer.checkpoints
        deadline = time.monotonic() + 10
        while checkpointer.checkpoints < before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpointer.checkpoints >= before + 2
    finally:
        store.close()
    again = Store.open(tmp_path / "d")
    assert {r.name for r in again.load_topologies()} == {"t"}
    again.close()
