"""Nimbus's durable state: a SQLite file (WAL) plus a folder of code bundles.

Guarantees:

* every write is one transaction: a topology and its placement are saved or deleted
  together, so a crash never leaves a placement without its topology;
* bundles are content-addressed (sha256 hex digest as file name), written to a temporary
  file and renamed, so a reader never sees half a bundle;
* ``load_topologies`` returns what ``save_topology`` stored, placements included, so a
  restarted Nimbus pushes the same assignment it pushed before;
* a migration in progress (its phase, target placement and the snapshots collected so
  far) is stored at every step, so a restarted Nimbus can finish it;
* rebalance events are kept per topology, at most ``EVENTS_KEPT`` declined ones and
  ``EVENTS_KEPT`` others (the oldest are dropped first), and go with the topology.

``Store(":memory:")`` keeps bundles in memory (for tests).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import msgpack

from squall.nimbus.records import Slot, SupervisorRecord, TopologyRecord
from squall.topology.spec import TopologySpec

DB_NAME = "nimbus.db"
BLOB_DIR = "blobs"
EVENTS_KEPT = 500

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
"""


class Store:
    """SQLite tables ``topologies``, ``assignments``, ``supervisors`` and a blob folder."""

    def __init__(self, db_path: str | Path, blob_dir: str | Path | None = None) -> None:
        self._memory = str(db_path) == ":memory:"
        self._blobs: dict[str, bytes] = {}
        self._blob_dir = Path(blob_dir) if blob_dir is not None else None
        if self._blob_dir is None and not self._memory:
            self._blob_dir = Path(db_path).parent / BLOB_DIR
        if self._blob_dir is not None:
            self._blob_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(topologies)")}
        if "error" not in columns:  # a store written before topologies could fail
            self._db.execute("ALTER TABLE topologies ADD COLUMN error TEXT NOT NULL DEFAULT ''")

    @classmethod
    def open(cls, data_dir: str | Path) -> "Store":
        """The store of a data directory (created if missing)."""
        path = Path(data_dir).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return cls(path / DB_NAME, path / BLOB_DIR)

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> "_Transaction":
        return _Transaction(self._db)

    # -- bundles ---------------------------------------------------------------------------

    def put_bundle(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if self._blob_dir is None:
            self._blobs[digest] = bytes(data)
            return digest
        final = self._blob_dir / digest
        if not final.exists():
            tmp = self._blob_dir / f".{digest}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, final)
        return digest

    def get_bundle(self, digest: str) -> bytes | None:
        if self._blob_dir is None:
            return self._blobs.get(digest)
        try:
            return (self._blob_dir / digest).read_bytes()
        except FileNotFoundError:
            return None

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

    def save_topology(self, rec: TopologyRecord) -> None:
        """Upsert the topology and replace its placement, in one transaction."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO topologies (name, spec, scheduler, conf, bundle_digest, bundle_size,"
                " submitted_at, phase, active, deadline, pending, version, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rec.name, json.dumps(rec.spec.to_dict()), rec.scheduler, json.dumps(rec.conf),
                    rec.bundle_digest, rec.bundle_size, rec.submitted_at, rec.phase, int(rec.active),
                    rec.deadline, None if rec.pending is None else json.dumps(rec.pending), rec.version, rec.error,
                ),
            )
            db.execute("DELETE FROM assignments WHERE topology = ?", (rec.name,))
            db.executemany(
                "INSERT INTO assignments VALUES (?,?,?,?,?)",
                [(rec.name, ex, s.worker, s.node, s.port) for ex, s in sorted(rec.placement.items())],
            )

    def delete_topology(self, name: str) -> None:
        """The topology, its placement, migration, events and loop clock, in one transaction."""
        with self._tx() as db:
            db.execute("DELETE FROM assignments WHERE topology = ?", (name,))
            db.execute("DELETE FROM topologies WHERE name = ?", (name,))
            db.execute("DELETE FROM migrations WHERE topology = ?", (name,))
            db.execute("DELETE FROM rebalance_events WHERE topology = ?", (name,))
            db.execute("DELETE FROM loop_clocks WHERE topology = ?", (name,))

    def load_topologies(self) -> list[TopologyRecord]:
        placements: dict[str, dict[int, Slot]] = {}
        for t, ex, w, node, port in self._db.execute("SELECT topology, executor, worker, node, port FROM assignments"):
            placements.setdefault(t, {})[int(ex)] = Slot(int(w), str(node), int(port))
        out = []
        rows = self._db.execute(
            "SELECT name, spec, scheduler, conf, bundle_digest, bundle_size, submitted_at, phase, active,"
            " deadline, pending, version, error FROM topologies ORDER BY name"
        ).fetchall()
        for name, spec, sched, conf, digest, size, at, phase, active, deadline, pending, version, error in rows:
            out.append(
                TopologyRecord(
                    name=name, spec=TopologySpec.from_dict(json.loads(spec)), scheduler=sched,
                    conf=json.loads(conf), bundle_digest=digest, bundle_size=int(size), submitted_at=float(at),
                    phase=phase, active=bool(active), deadline=deadline,
                    pending=None if pending is None else json.loads(pending), version=int(version),
                    placement=placements.get(name, {}), error=str(error or ""),
                )
            )
        return out

    # -- live rebalancing -------------------------------------------------------------------

    def save_migration(self, topology: str, record: dict[str, Any], states: dict[int, bytes]) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO migrations VALUES (?,?,?)",
                       (topology, json.dumps(record), msgpack.packb(states, use_bin_type=True)))

    def delete_migration(self, topology: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM migrations WHERE topology = ?", (topology,))

    def load_migrations(self) -> list[tuple[dict[str, Any], dict[int, bytes]]]:
        rows = self._db.execute("SELECT record, states FROM migrations ORDER BY topology").fetchall()
        return [(json.loads(r), dict(msgpack.unpackb(st, raw=False, strict_map_key=False))) for r, st in rows]

    def add_event(self, topology: str, event: dict[str, Any]) -> int:
        """Store an event (JSON-able dict with a "decision"); returns its id. Trims the
        topology's events of the same kind (declined or not) to the newest ``EVENTS_KEPT``."""
        declined = int(event.get("decision") == "declined")
        with self._tx() as db:
            cur = db.execute("INSERT INTO rebalance_events (topology, declined, event) VALUES (?,?,?)",
                             (topology, declined, json.dumps(event)))
            db.execute(
                "DELETE FROM rebalance_events WHERE topology = ? AND declined = ? AND id NOT IN ("
                " SELECT id FROM rebalance_events WHERE topology = ? AND declined = ? ORDER BY id DESC LIMIT ?)",
                (topology, declined, topology, declined, EVENTS_KEPT),
            )
            return int(cur.lastrowid or 0)

    def update_event(self, event_id: int, changes: dict[str, Any]) -> None:
        with self._tx() as db:
            row = db.execute("SELECT event FROM rebalance_events WHERE id = ?", (event_id,)).fetchone()
            if row is not None:
                event = {**json.loads(row[0]), **changes}
                db.execute("UPDATE rebalance_events SET event = ? WHERE id = ?", (json.dumps(event), event_id))

    def events(self, topology: str) -> list[dict[str, Any]]:
        """The topology's events, oldest first, each with its "id"."""
        rows = self._db.execute("SELECT id, event FROM rebalance_events WHERE topology = ? ORDER BY id",
                                (topology,)).fetchall()
        return [{"id": int(i), **json.loads(e)} for i, e in rows]

    def save_clock(self, topology: str, last_change: float) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO loop_clocks VALUES (?,?)", (topology, last_change))

    def load_clocks(self) -> dict[str, float]:
        return {t: float(c) for t, c in self._db.execute("SELECT topology, last_change FROM loop_clocks")}

    # -- supervisors -----------------------------------------------------------------------

    def save_supervisor(self, sup: SupervisorRecord) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO supervisors VALUES (?,?,?,?,?,?,?,?,?)",
                (sup.id, sup.host, json.dumps(sup.ports), sup.capacity_hz, sup.clock_hz, sup.cores,
                 sup.memory_mb, sup.version, sup.last_seen),
            )

    def load_supervisors(self) -> list[SupervisorRecord]:
        """Supervisors seen before, with ``last_seen`` cleared: none is alive until it speaks."""
        rows = self._db.execute(
            "SELECT id, host, ports, capacity_hz, clock_hz, cores, memory_mb, version FROM supervisors ORDER BY id"
        ).fetchall()
        return [
            SupervisorRecord(id=i, host=h, ports=[int(p) for p in json.loads(ports)], capacity_hz=float(c),
                             clock_hz=float(clk), cores=int(cores), memory_mb=int(mem), version=int(v))
            for i, h, ports, c, clk, cores, mem, v in rows
        ]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
