"""The SQL of each of Nimbus's store writes, one function per record kind, and the table
that carries out a write command (:data:`WRITERS`). Each function runs inside the caller's
transaction (``Store`` opens it), so a command's rows are written together or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import msgpack

from squall.nimbus.commands import (
    AddEvent,
    DeleteMigration,
    DeleteSupervisor,
    DeleteTopology,
    SaveClock,
    SaveEpoch,
    SaveLogPosition,
    SaveMigration,
    SaveSupervisor,
    SaveTopology,
    UpdateEvent,
)
from squall.nimbus.records import SupervisorRecord, TopologyRecord

EVENTS_KEPT = 500  # rebalance events kept per topology: declined ones and others, each


def save_topology(db: sqlite3.Connection, rec: TopologyRecord) -> None:
    db.execute(
        "INSERT OR REPLACE INTO topologies (name, spec, scheduler, conf, bundle_digest, bundle_size,"
        " submitted_at, phase, active, deadline, pending, version, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            rec.name,
            json.dumps(rec.spec.to_dict()),
            rec.scheduler,
            json.dumps(rec.conf),
            rec.bundle_digest,
            rec.bundle_size,
            rec.submitted_at,
            rec.phase,
            int(rec.active),
            rec.deadline,
            None if rec.pending is None else json.dumps(rec.pending),
            rec.version,
            rec.error,
        ),
    )
    db.execute("DELETE FROM assignments WHERE topology = ?", (rec.name,))
    db.executemany(
        "INSERT INTO assignments VALUES (?,?,?,?,?)",
        [(rec.name, ex, s.worker, s.node, s.port) for ex, s in sorted(rec.placement.items())],
    )


def delete_topology(db: sqlite3.Connection, name: str) -> None:
    db.execute("DELETE FROM assignments WHERE topology = ?", (name,))
    db.execute("DELETE FROM topologies WHERE name = ?", (name,))
    db.execute("DELETE FROM migrations WHERE topology = ?", (name,))
    db.execute("DELETE FROM rebalance_events WHERE topology = ?", (name,))
    db.execute("DELETE FROM loop_clocks WHERE topology = ?", (name,))


def save_migration(db: sqlite3.Connection, topology: str, record: dict[str, Any], states: dict[int, bytes]) -> None:
    db.execute(
        "INSERT OR REPLACE INTO migrations VALUES (?,?,?)",
        (topology, json.dumps(record), msgpack.packb(states, use_bin_type=True)),
    )


def delete_migration(db: sqlite3.Connection, topology: str) -> None:
    db.execute("DELETE FROM migrations WHERE topology = ?", (topology,))


def add_event(db: sqlite3.Connection, topology: str, event: dict[str, Any], event_id: int | None) -> int:
    declined = int(event.get("decision") == "declined")
    cur = db.execute(
        "INSERT INTO rebalance_events (id, topology, declined, event) VALUES (?,?,?,?)",
        (event_id, topology, declined, json.dumps(event)),
    )
    db.execute(
        "DELETE FROM rebalance_events WHERE topology = ? AND declined = ? AND id NOT IN ("
        " SELECT id FROM rebalance_events WHERE topology = ? AND declined = ? ORDER BY id DESC LIMIT ?)",
        (topology, declined, topology, declined, EVENTS_KEPT),
    )
    return int(cur.lastrowid or 0)


def update_event(db: sqlite3.Connection, event_id: int, changes: dict[str, Any]) -> None:
    row = db.execute("SELECT event FROM rebalance_events WHERE id = ?", (event_id,)).fetchone()
    if row is not None:
        event = {**json.loads(row[0]), **changes}
        db.execute("UPDATE rebalance_events SET event = ? WHERE id = ?", (json.dumps(event), event_id))


def save_epoch(db: sqlite3.Connection, epoch: int) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES ('epoch', ?)", (str(int(epoch)),))


def save_clock(db: sqlite3.Connection, topology: str, last_change: float) -> None:
    db.execute("INSERT OR REPLACE INTO loop_clocks VALUES (?,?)", (topology, last_change))


def save_supervisor(db: sqlite3.Connection, sup: SupervisorRecord) -> None:
    db.execute(
        "INSERT OR REPLACE INTO supervisors VALUES (?,?,?,?,?,?,?,?,?)",
        (
            sup.id,
            sup.host,
            json.dumps(sup.ports),
            sup.capacity_hz,
            sup.clock_hz,
            sup.cores,
            sup.memory_mb,
            sup.version,
            sup.last_seen,
        ),
    )


def delete_supervisor(db: sqlite3.Connection, supervisor_id: str) -> None:
    db.execute("DELETE FROM supervisors WHERE id = ?", (supervisor_id,))


def save_log_position(db: sqlite3.Connection, applied: int) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES ('log_position', ?)", (str(int(applied)),))


WRITERS: dict[type, Callable[[sqlite3.Connection, Any], object]] = {
    SaveTopology: lambda db, c: save_topology(db, c.record),
    DeleteTopology: lambda db, c: delete_topology(db, c.name),
    SaveSupervisor: lambda db, c: save_supervisor(db, c.record),
    DeleteSupervisor: lambda db, c: delete_supervisor(db, c.supervisor_id),
    SaveMigration: lambda db, c: save_migration(db, c.topology, c.record, c.states),
    DeleteMigration: lambda db, c: delete_migration(db, c.topology),
    SaveClock: lambda db, c: save_clock(db, c.topology, c.last_change),
    SaveEpoch: lambda db, c: save_epoch(db, c.epoch),
    AddEvent: lambda db, c: add_event(db, c.topology, c.event, c.event_id),
    UpdateEvent: lambda db, c: update_event(db, c.event_id, c.changes),
    SaveLogPosition: lambda db, c: save_log_position(db, c.applied),
}
