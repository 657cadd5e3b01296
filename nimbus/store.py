"""Nimbus's durable state: a SQLite file (WAL) plus a folder of code bundles.

Guarantees:

* writes come as :mod:`squall.nimbus.commands` values, and :meth:`Store.carry_out` applies
  one event's writes in one transaction: a topology and its placement are saved or deleted
  together, so a crash never leaves a placement without its topology;
* bundles are content-addressed (sha256 hex digest as file name), written to a temporary
  file and renamed, so a reader never sees half a bundle;
* ``load_topologies`` returns what a ``SaveTopology`` stored, placements included, so a
  restarted Nimbus pushes the same assignment it pushed before;
* a migration in progress (its phase, target placement and the snapshots collected so
  far) is stored at every step, so a restarted Nimbus can finish it;
* rebalance events are kept per topology, at most ``EVENTS_KEPT`` declined ones and
  ``EVENTS_KEPT`` others (the oldest are dropped first), and go with the topology.

* the server loop's commits never wait for the disk: in WAL mode with ``synchronous=NORMAL``
  a commit only appends to the log, and the checkpoints that copy the log into the database
  (the writes that fsync, seconds on a busy SD card) run on a thread of their own every
  ``CHECKPOINT_S`` instead of inside whichever commit crosses SQLite's threshold;
* a failed write (a full disk, a read-only file) raises :class:`StoreError` and leaves the
  file as it was (the transaction is rolled back): the caller keeps memory as it was too;
* ``Store.open`` fails with a :class:`StoreError` whose message names the file and the fix
  for every way a data directory can be unusable: another Nimbus holds it (an exclusive
  lock on ``nimbus.lock``), it is not writable, the database is corrupt or of another
  schema, a row cannot be read; the CLI turns it into exit 2;
* a bundle is fsynced (file and folder) before it is renamed into place, and its digest is
  checked on every read: a bundle damaged on disk reads as missing (logged), never as other
  code; temporary files a killed write left behind are deleted at open.

``Store(":memory:")`` keeps bundles in memory (for tests).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgpack

from squall import messages as M
from squall.nimbus import store_rows as rows
from squall.nimbus.commands import (
    Command,
    DropBundle,
    PutBundle,
    Read,
    ReplyBundle,
    ReplyEvents,
    SaveEpoch,
    Send,
    Write,
)
from squall.nimbus.records import Placement, Slot, SupervisorRecord, TopologyRecord
from squall.nimbus.store_rows import EVENTS_KEPT as EVENTS_KEPT  # part of the store's API
from squall.topology.spec import TopologySpec

DB_NAME = "nimbus.db"
BLOB_DIR = "blobs"
LOCK_NAME = "nimbus.lock"
CHECKPOINT_S = 2.0
SCHEMA_VERSION = 1  # PRAGMA user_version; a file with a higher one was written by a newer Squall

log = logging.getLogger("squall.nimbus.store")
T = TypeVar("T")


class StoreError(Exception):
    """The store cannot be used or written; the message names the file and what to do."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS topologies (
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, scheduler TEXT NOT NULL, conf TEXT NOT NULL,
    bundle_digest TEXT NOT NULL, bundle_size INTEGER NOT NULL, submitted_at REAL NOT NULL,
    phase TEXT NOT NULL, active INTEGER NOT NULL, deadline REAL, pending TEXT,
    version INTEGER NOT NULL, error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS assignments (
    topology TEXT NOT NULL, executor INTEGER NOT NULL, worker INTEGER NOT NULL,
    node TEXT NOT NULL, port INTEGER NOT NULL, PRIMARY KEY (topology, executor)
);
CREATE TABLE IF NOT EXISTS supervisors (
    id TEXT PRIMARY KEY, host TEXT NOT NULL, ports TEXT NOT NULL, capacity_hz REAL NOT NULL,
    clock_hz REAL NOT NULL, cores INTEGER NOT NULL, memory_mb INTEGER NOT NULL,
    version INTEGER NOT NULL, last_seen REAL
);
CREATE TABLE IF NOT EXISTS migrations (
    topology TEXT PRIMARY KEY, record TEXT NOT NULL, states BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS rebalance_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topology TEXT NOT NULL, declined INTEGER NOT NULL, event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rebalance_events_by_topology ON rebalance_events (topology, declined, id);
CREATE TABLE IF NOT EXISTS loop_clocks (topology TEXT PRIMARY KEY, last_change REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


# Every column each table must have (a file of another schema lacks some).
_COLUMNS = {
    "topologies": {
        "name",
        "spec",
        "scheduler",
        "conf",
        "bundle_digest",
        "bundle_size",
        "submitted_at",
        "phase",
        "active",
        "deadline",
        "pending",
        "version",
        "error",
    },
    "assignments": {"topology", "executor", "worker", "node", "port"},
    "supervisors": {"id", "host", "ports", "capacity_hz", "clock_hz", "cores", "memory_mb", "version", "last_seen"},
    "migrations": {"topology", "record", "states"},
    "rebalance_events": {"id", "topology", "declined", "event"},
    "loop_clocks": {"topology", "last_change"},
    "meta": {"key", "value"},
}


class Store:
    """SQLite tables ``topologies``, ``assignments``, ``supervisors`` and a blob folder."""

    def __init__(self, db_path: str | Path, blob_dir: str | Path | None = None) -> None:
        self._memory = str(db_path) == ":memory:"
        self.path = str(db_path)
        self._lock_fd: int | None = None
        self._checkpointer: _Checkpointer | None = None
        self._blobs: dict[str, bytes] = {}
        self._blob_dir = Path(blob_dir) if blob_dir is not None else None
        if self._blob_dir is None and not self._memory:
            self._blob_dir = Path(db_path).parent / BLOB_DIR
        if self._blob_dir is not None:
            try:
                self._blob_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"{self._blob_dir}: cannot create the bundle folder ({exc.strerror}); make its "
                    "parent writable by the user running Nimbus"
                ) from None
            self._remove_leftovers()
        try:
            self._db = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{db_path}: written by a newer Squall (schema {version}, this one reads "
                    f"{SCHEMA_VERSION}); upgrade Squall, or move the file away to start empty"
                )
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(topologies)")}
            if "error" not in columns:  # a store written before topologies could fail
                self._db.execute("ALTER TABLE topologies ADD COLUMN error TEXT NOT NULL DEFAULT ''")
            self._check_schema()
            if version < SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if not self._memory:
                self._db.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer thread does them
                self._checkpointer = _Checkpointer(str(db_path))
        except sqlite3.DatabaseError as exc:
            raise StoreError(_open_advice(str(db_path), exc)) from None
        if self._checkpointer is not None:
            self._checkpointer.start()

    @classmethod
    def open(cls, data_dir: str | Path) -> Store:
        """The store of a data directory (created if missing), locked for this process:
        a second Nimbus on the same directory gets a StoreError naming the first's pid."""
        path = Path(data_dir).expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{path}: cannot create the data directory ({exc.strerror}); create it, or give another --data-dir"
            ) from None
        lock_fd = _lock(path)
        try:
            store = cls(path / DB_NAME, path / BLOB_DIR)
        except BaseException:
            os.close(lock_fd)
            raise
        store._lock_fd = lock_fd
        return store

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self._db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def _tx(self) -> _Transaction:
        return _Transaction(self._db, self.path)

    def _check_schema(self) -> None:
        for table, wanted in _COLUMNS.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            missing = wanted - have
            if missing:
                raise StoreError(
                    f"{self.path}: table {table} lacks column(s) {sorted(missing)}: a file of another "
                    "program or version; move it away to start empty, or restore a backup"
                )

    def _remove_leftovers(self) -> None:
        """Temporary files of bundle writes a kill interrupted (they are never read)."""
        assert self._blob_dir is not None
        for tmp in self._blob_dir.glob(".*.tmp"):
            try:
                tmp.unlink()
                log.info("removed %s, left by an interrupted bundle write", tmp)
            except OSError as exc:
                log.warning("cannot remove %s: %s", tmp, exc)

    def _read_rows(
        self, table: str, key_of: Callable[[tuple], str], rows: list[tuple], parse: Callable[[tuple], T]
    ) -> list[T]:
        """``parse`` each row; a row that cannot be read is a StoreError naming it and the fix."""
        out = []
        for row in rows:
            try:
                out.append(parse(row))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:  # JSON, a spec, a number
                key = key_of(row)
                raise StoreError(
                    f"{self.path}: row {key!r} of table {table} cannot be read ({type(exc).__name__}: "
                    f'{str(exc)[:200]}); delete it (sqlite3 {self.path} "DELETE FROM {table} WHERE '
                    f"{_KEY_COLUMN[table]} = '{key}'\") or restore a backup"
                ) from None
        return out

    # -- bundles ---------------------------------------------------------------------------

    def put_bundle(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if self._blob_dir is None:
            self._blobs[digest] = bytes(data)
            return digest
        final = self._blob_dir / digest
        if not final.exists() or self.get_bundle(digest) is None:
            tmp = self._blob_dir / f".{digest}.{os.getpid()}.tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())  # the bytes are on disk before the name points at them
                os.replace(tmp, final)
                _fsync_dir(self._blob_dir)  # and so is the rename
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise StoreError(f"cannot write bundle {final}: {exc.strerror or exc}") from None
        return digest

    def get_bundle(self, digest: str) -> bytes | None:
        """The bundle, or None when missing or damaged (its content no longer has its digest)."""
        if self._blob_dir is None:
            return self._blobs.get(digest)
        path = self._blob_dir / digest
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("cannot read bundle %s: %s", path, exc)
            return None
        if hashlib.sha256(data).hexdigest() != digest:
            log.error("bundle %s is damaged (its content does not match its digest); resubmit the topology", path)
            return None
        return data

    def drop_bundle(self, digest: str) -> None:
        """Delete a bundle unless a stored topology still uses it."""
        row = self._db.execute("SELECT 1 FROM topologies WHERE bundle_digest = ?", (digest,)).fetchone()
        if row is not None:
            return
        if self._blob_dir is None:
            self._blobs.pop(digest, None)
        else:
            (self._blob_dir / digest).unlink(missing_ok=True)

    # -- topologies ------------------------------------------------------------------------

    def load_topologies(self) -> list[TopologyRecord]:
        placements: dict[str, dict[int, Slot]] = {}
        rows = self._db.execute("SELECT topology, executor, worker, node, port FROM assignments").fetchall()

        def place(row: tuple) -> None:
            t, ex, w, node, port = row
            placements.setdefault(str(t), {})[int(ex)] = Slot(int(w), str(node), int(port))

        self._read_rows("assignments", lambda r: str(r[0]), rows, place)
        rows = self._db.execute(
            "SELECT name, spec, scheduler, conf, bundle_digest, bundle_size, submitted_at, phase, active,"
            " deadline, pending, version, error FROM topologies ORDER BY name"
        ).fetchall()

        def parse(row: tuple) -> TopologyRecord:
            name, spec, sched, conf, digest, size, at, phase, active, deadline, pending, version, error = row
            return TopologyRecord(
                name=str(name),
                spec=TopologySpec.from_dict(json.loads(spec)),
                scheduler=str(sched),
                conf=_mapping(json.loads(conf)),
                bundle_digest=str(digest),
                bundle_size=int(size),
                submitted_at=float(at),
                phase=str(phase),
                active=bool(active),
                deadline=None if deadline is None else float(deadline),
                pending=None if pending is None else json.loads(pending),
                version=int(version),
                placement=Placement(placements.get(name, {})),
                error=str(error or ""),
            )

        return self._read_rows("topologies", lambda r: str(r[0]), rows, parse)

    # -- live rebalancing -------------------------------------------------------------------

    def load_migrations(self) -> list[tuple[dict[str, Any], dict[int, bytes]]]:
        rows = self._db.execute("SELECT topology, record, states FROM migrations ORDER BY topology").fetchall()
        return self._read_rows(
            "migrations",
            lambda r: str(r[0]),
            rows,
            lambda r: (_mapping(json.loads(r[1])), dict(msgpack.unpackb(r[2], raw=False, strict_map_key=False))),
        )

    def add_event(self, topology: str, event: dict[str, Any], event_id: int | None = None) -> int:
        """Store an event (JSON-able dict with a "decision"), under ``event_id`` or the next
        free id; returns its id. Trims the topology's events of the same kind (declined or
        not) to the newest ``EVENTS_KEPT``."""
        with self._tx() as db:
            return rows.add_event(db, topology, event, event_id)

    def last_event_id(self) -> int:
        """The highest event id ever given (ids of deleted events are not given again)."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'rebalance_events'").fetchone()
        return int(row[0]) if row is not None else 0

    def events(self, topology: str) -> list[dict[str, Any]]:
        """The topology's events, oldest first, each with its "id"."""
        return _events(self._db, topology)

    def events_reader(self) -> EventReader | None:
        """A reader of the events for another thread (None for an in-memory store, which
        only its own connection sees)."""
        return None if self._memory else EventReader(self.path)

    def load_clocks(self) -> dict[str, float]:
        rows = self._db.execute("SELECT topology, last_change FROM loop_clocks").fetchall()
        return dict(self._read_rows("loop_clocks", lambda r: str(r[0]), rows, lambda r: (str(r[0]), float(r[1]))))

    # -- meta ------------------------------------------------------------------------------

    def load_epoch(self) -> int:
        """The Nimbus term (epoch) last saved; 0 for a new data directory."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        if row is None:
            return 0
        rows = self._read_rows("meta", lambda r: "epoch", [row], lambda r: int(r[0]))
        if rows[0] < 0:
            raise StoreError(
                f"{self.path}: meta epoch {rows[0]} is negative; delete it (sqlite3 {self.path} "
                "\"DELETE FROM meta WHERE key = 'epoch'\") or restore a backup"
            )
        return rows[0]

    def load_log_position(self) -> int:
        """How many replicated-log entries a Nimbus replica carried out into this store (0 for a
        new data directory or a standalone Nimbus); see ``SaveLogPosition``."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'log_position'").fetchone()
        if row is None:
            return 0
        return self._read_rows("meta", lambda r: "log_position", [row], lambda r: int(r[0]))[0]

    def save_epoch(self, epoch: int) -> None:
        """At start, before Nimbus serves (later raises go through ``SaveEpoch``)."""
        self.carry_out([SaveEpoch(epoch)])

    # -- supervisors -----------------------------------------------------------------------

    def load_supervisors(self) -> list[SupervisorRecord]:
        """Supervisors seen before, with ``last_seen`` cleared: none is alive until it speaks."""
        rows = self._db.execute(
            "SELECT id, host, ports, capacity_hz, clock_hz, cores, memory_mb, version FROM supervisors ORDER BY id"
        ).fetchall()
        return self._read_rows(
            "supervisors",
            lambda r: str(r[0]),
            rows,
            lambda r: SupervisorRecord(
                id=str(r[0]),
                host=str(r[1]),
                ports=[int(p) for p in json.loads(r[2])],
                capacity_hz=float(r[3]),
                clock_hz=float(r[4]),
                cores=int(r[5]),
                memory_mb=int(r[6]),
                version=int(r[7]),
            ),
        )

    # -- carrying out the state machine's commands ------------------------------------------

    def carry_out(self, commands: list[Command]) -> list[Send]:
        """Apply one event's :class:`~squall.nimbus.commands.Write` commands, in order, in one
        transaction (bundles are written first, as files; unused ones dropped after the
        commit), then answer its :class:`~squall.nimbus.commands.Read` commands; returns the
        sends, in order, for the caller to put on the wire. A failed write raises
        :class:`StoreError` with nothing committed, and then nothing must be sent."""
        writes = [c for c in commands if isinstance(c, Write)]
        for c in writes:
            if isinstance(c, PutBundle):
                self.put_bundle(c.data)
        table = [c for c in writes if not isinstance(c, (PutBundle, DropBundle))]
        if table:
            with self._tx() as db:
                for c in table:
                    rows.WRITERS[type(c)](db, c)
        for c in writes:
            if isinstance(c, DropBundle):
                try:
                    self.drop_bundle(c.digest)
                except (OSError, sqlite3.Error) as exc:  # committed already: a leftover file, not a failure
                    log.warning("cannot drop bundle %s (left on disk): %s", c.digest, exc)
        out: list[Send] = []
        for cmd in commands:
            if isinstance(cmd, Send):
                out.append(cmd)
            elif isinstance(cmd, Read):
                out.append(self._answer(cmd))
        return out

    def _answer(self, read: Read) -> Send:
        if isinstance(read, ReplyEvents):
            return Send(read.peer, M.Reply(rid=read.rid, ok=True, data=self.events(read.topology)))
        assert isinstance(read, ReplyBundle)
        bundle = self.get_bundle(read.digest)
        if bundle is None:
            error = f"the code bundle of {read.topology!r} ({read.digest}) is missing from the store"
            return Send(read.peer, M.Reply(rid=read.rid, ok=False, error=error))
        return Send(read.peer, M.Reply(rid=read.rid, ok=True, data={**read.view, "bundle": bundle}))


def _events(db: sqlite3.Connection, topology: str) -> list[dict[str, Any]]:
    rows = db.execute("SELECT id, event FROM rebalance_events WHERE topology = ? ORDER BY id", (topology,)).fetchall()
    return [{"id": int(i), **json.loads(e)} for i, e in rows]


class EventReader:
    """Reads rebalance events on a connection of its own, for the HTTP side: the read neither
    waits for the server loop nor uses its connection (in WAL mode a reader and the loop's
    writes never wait for each other). One connection, opened on first use, used under a
    lock (event pages are rare); ``close()`` closes it."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def events(self, topology: str) -> list[dict[str, Any]]:
        """As :meth:`Store.events`; a database error is a StoreError."""
        with self._lock:
            try:
                if self._db is None:
                    self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=5)
                return _events(self._db, topology)
            except sqlite3.Error as exc:
                raise StoreError(f"{self._path}: cannot read the events of {topology!r}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises; a database error (a full
    disk, a read-only file) becomes a StoreError after the rollback."""

    def __init__(self, db: sqlite3.Connection, path: str) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write {self._path}: {exc}") from None
        return self._db

    def __exit__(self, exc_type: Any, exc: Any, tb: object) -> None:
        try:
            self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        except sqlite3.Error as failure:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StoreError(f"cannot write {self._path}: {failure}") from None
        if exc_type is not None and issubclass(exc_type, sqlite3.Error):
            raise StoreError(f"cannot write {self._path}: {exc}") from None


class _Checkpointer(threading.Thread):
    """Copies the WAL into the database every ``CHECKPOINT_S`` on its own connection
    (PASSIVE: it never waits for, nor blocks, the loop's writes); a failure is logged and
    retried at the next period."""

    def __init__(self, path: str) -> None:
        super().__init__(name="nimbus-store-checkpoint", daemon=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._halt = threading.Event()
        self.checkpoints = 0

    def run(self) -> None:
        while not self._halt.wait(CHECKPOINT_S):
            self.checkpoint()

    def checkpoint(self) -> None:
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.checkpoints += 1
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed (retried in %.0f s): %s", CHECKPOINT_S, exc)

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(10)
        self.checkpoint()  # leave the log folded in
        self._db.close()


_KEY_COLUMN = {
    "topologies": "name",
    "assignments": "topology",
    "supervisors": "id",
    "migrations": "topology",
    "loop_clocks": "topology",
    "meta": "key",
}


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock(data_dir: Path) -> int:
    """An exclusive lock on ``data_dir/nimbus.lock`` held until the fd closes (a crash frees it)."""
    path = data_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(
            f"{data_dir}: not writable ({exc.strerror}); make it writable by the user running Nimbus, "
            "or give another --data-dir"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StoreError(
            f"{data_dir} is in use by another Nimbus (pid {holder}); stop it, or give another --data-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _open_advice(path: str, exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "readonly" in text or "unable to open" in text or "disk I/O" in text:
        return (
            f"{path}: cannot open it for writing ({text}); make the file and its folder writable by the user "
            "running Nimbus, or give another --data-dir"
        )
    return (
        f"{path}: not a usable Nimbus store ({text}); move it away to start empty (topologies are then "
        "forgotten), or restore it from a backup"
    )
