"""Emulated boards: the board classes and the board file.

A board file is JSON — either a list of boards or ``{"boards": [...]}`` — where each board is

    {"id": "pi4-a", "class": "pi4", "link": "wifi", "link_mbit": 20, "delay_ms": 1.5,
     "jitter_ms": 1.0, "cpu": 0.4, "memory_mb": 2048, "slots": 2}

``id`` and ``class`` are required; the rest default to the class's values (board class:
``cpu``, ``memory_mb``, ``slots``; link class: ``link_mbit``, ``delay_ms``, ``jitter_ms``).
``cpu`` is the share of one of *this machine's* cores the board gets (cgroup cpu quota),
``link`` the link class (``ethernet`` or ``wifi``), ``link_mbit`` the rate of its link in
each direction (tc HTB), ``delay_ms`` and ``jitter_ms`` its one-way delay (EMULATED in user
space by :mod:`squall.experiments.linkdelay`; the kernel here has no netem), ``memory_mb``
its memory cap (cgroup memory), ``slots`` its worker slots (default: the Findex slot table
of ``squall.supervisor.facts``).

The capacity a board's supervisor advertises is ``cpu x this machine's clock x the usable
share``: what its cgroup lets it use, in the same cycles the workers measure load in, so the
schedulers compare like with like. A Pi 3 thus has about 0.6 of a Pi 4's capacity and a Pi 5
about 1.5 times it, as their clocks and cores suggest.

Loading is pure: :func:`parse_boards` raises :class:`BoardFileError` naming the board and
field at fault.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squall.supervisor.facts import USABLE_SHARE, findex_of

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")


@dataclass(frozen=True)
class BoardClass:
    """What a board model brings: its cores, clock and memory (its slots follow from them by
    the Findex), and a CPU share of this machine scaled to its real compute."""

    name: str
    cores: int
    clock_ghz: float
    memory_mb: int
    cpu: float


# cpu shares are scaled to cores x clock of the real boards: Pi 3 4x1.2 GHz, Pi 4 4x1.5 GHz,
# Pi 5 4x2.4 GHz, so that four boards fit in about 1.6 cores of this machine.
@dataclass(frozen=True)
class LinkClass:
    """A link technology's usual rate and one-way delay (docs/experiments.md cites the
    measurements): a board's share of a round trip to another board is its ``delay_ms``."""

    name: str
    link_mbit: float
    delay_ms: float
    jitter_ms: float


# Wired: a Pi on switched Ethernet pings a LAN host in 0.51-0.54 ms median (IQR 0.05 ms)
# -> 0.25 ms per link. Wi-Fi: a Pi 4 on 5 GHz Wi-Fi averages 1.8 ms to a wired host with a
# tail past 10 ms -> 1.5 ms per link (+ 0.25 ms of the wired end), +-1 ms jitter; 20 Mbit/s
# is what such a link sustains in practice, not its nominal rate.
LINKS: dict[str, LinkClass] = {
    "ethernet": LinkClass("ethernet", 100.0, 0.25, 0.03),
    "wifi": LinkClass("wifi", 20.0, 1.5, 1.0),
}


CLASSES: dict[str, BoardClass] = {
    "pi3": BoardClass("pi3", 4, 1.2, 1024, 0.25),
    "pi4": BoardClass("pi4", 4, 1.5, 4096, 0.32),
    "pi5": BoardClass("pi5", 4, 2.4, 4096, 0.5),
}


class BoardFileError(ValueError):
    """A board file that cannot be used; the message names the board and field."""


@dataclass(frozen=True)
class Board:
    id: str
    board_class: str
    link_mbit: float
    cpu: float
    memory_mb: int
    slots: int
    link: str = "ethernet"
    delay_ms: float = 0.0
    jitter_ms: float = 0.0

    def capacity_hz(self, clock_hz: float) -> float:
        return self.cpu * clock_hz * USABLE_SHARE

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "class": self.board_class,
            "link": self.link,
            "link_mbit": self.link_mbit,
            "delay_ms": self.delay_ms,
            "jitter_ms": self.jitter_ms,
            "cpu": self.cpu,
            "memory_mb": self.memory_mb,
            "slots": self.slots,
        }


def default_slots(memory_mb: int, cores: int, clock_ghz: float) -> int:
    """The Findex slot table for the board's memory, cores and clock (at least one: a
    board in a file is meant to run a worker)."""
    return max(1, findex_of(memory_mb, cores, clock_ghz * 1e9).slots)


def _number(raw: dict, key: str, default: float, where: str, low: float, high: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BoardFileError(f"{where}: {key} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def parse_board(raw: Any, where: str) -> Board:
    if not isinstance(raw, dict):
        raise BoardFileError(f"{where}: a board must be an object, got {type(raw).__name__}")
    unknown = set(raw) - {"id", "class", "link", "link_mbit", "delay_ms", "jitter_ms", "cpu", "memory_mb", "slots"}
    if unknown:
        raise BoardFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    board_id = raw.get("id")
    if not isinstance(board_id, str) or not ID_PATTERN.match(board_id):
        raise BoardFileError(
            f"{where}: id must be 1-20 of a-z, 0-9, '-' (starting with a letter or digit), got {board_id!r}"
        )
    where = f"{where} ({board_id})"
    name = raw.get("class")
    cls = CLASSES.get(name) if isinstance(name, str) else None  # a list or dict is not even a key
    if cls is None:
        raise BoardFileError(f"{where}: class must be one of {', '.join(CLASSES)}, got {raw.get('class')!r}")
    link_name = raw.get("link", "ethernet")
    link = LINKS.get(link_name) if isinstance(link_name, str) else None
    if link is None:
        raise BoardFileError(f"{where}: link must be one of {', '.join(LINKS)}, got {raw.get('link')!r}")
    memory = int(_number(raw, "memory_mb", cls.memory_mb, where, 128, 65536))
    return Board(
        id=board_id,
        board_class=cls.name,
        link_mbit=_number(raw, "link_mbit", link.link_mbit, where, 0.1, 10000),
        cpu=_number(raw, "cpu", cls.cpu, where, 0.01, 64),
        memory_mb=memory,
        slots=int(_number(raw, "slots", default_slots(memory, cls.cores, cls.clock_ghz), where, 1, 64)),
        link=link.name,
        delay_ms=_number(raw, "delay_ms", link.delay_ms, where, 0, 1000),
        jitter_ms=_number(raw, "jitter_ms", link.jitter_ms, where, 0, 1000),
    )


def parse_boards(data: Any, source: str = "boards") -> list[Board]:
    items = data.get("boards") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise BoardFileError(f'{source}: expected a non-empty list of boards (or {{"boards": [...]}})')
    boards = [parse_board(raw, f"{source}: boards[{i}]") for i, raw in enumerate(items)]
    seen: set[str] = set()
    for b in boards:
        if b.id in seen:
            raise BoardFileError(f"{source}: board id {b.id!r} appears twice")
        seen.add(b.id)
    if len(boards) > 200:
        raise BoardFileError(f"{source}: at most 200 boards (one /24 subnet)")
    return boards


def load_boards(path: str | Path) -> list[Board]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise BoardFileError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BoardFileError(f"{path}: not JSON: {exc}") from None
    return parse_boards(data, str(path))


DEFAULT_BOARDS_FILE = Path(__file__).resolve().parents[1] / "examples" / "boards" / "pis.json"


def default_boards() -> list[Board]:
    """Two Pi 4 (one on Wi-Fi), a Pi 3 and a Pi 5: the shipped heterogeneous default,
    built in so an installed package needs no example folder."""
    return parse_boards(
        [
            {"id": "pi4-a", "class": "pi4"},
            {"id": "pi4-b", "class": "pi4", "link": "wifi"},
            {"id": "pi3-a", "class": "pi3"},
            {"id": "pi5-a", "class": "pi5"},
        ],
        "default boards",
    )
