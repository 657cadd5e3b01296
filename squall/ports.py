"""Free loopback ports for daemons this process is about to start.

A port handed out here is free when it is checked, and stays free until the daemon binds it
as long as nothing else binds it first. Two things could: another caller of this module (we
never hand out the same port twice in one process, and other processes pick at random from
thousands), and the kernel, which gives every outgoing connection a source port from its
ephemeral range (``net.ipv4.ip_local_port_range``). A cluster's own ZeroMQ connections make
that second race real: a port obtained by binding port 0 *is* an ephemeral port, and a
connection opened a moment later can take it before the daemon binds it ("Address already in
use" at start). So ports are picked below the ephemeral range, where no connection lands.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10000
"""Below this are well-known and registered services we should not shadow."""

_handed_out: set[int] = set()
_rng = random.Random()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of source ports for outgoing connections (Linux's default when the
    setting cannot be read)."""
    try:
        low, high = (int(v) for v in EPHEMERAL_RANGE_FILE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def candidate_range() -> range:
    """Where ports are picked: between ``LOWEST`` and the ephemeral range, or above it when a
    host set the ephemeral range so low that little room is left below."""
    low, high = ephemeral_range()
    if low - LOWEST >= 4096:
        return range(LOWEST, low)
    return range(high + 1, 65536)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_range(count: int, attempts: int = 500) -> list[int]:
    """``count`` consecutive loopback ports, each free now (checked by binding it), outside the
    ephemeral range, and never handed out before by this process."""
    span = candidate_range()
    for _ in range(attempts):
        base = _rng.randrange(span.start, span.stop - count)
        ports = list(range(base, base + count))
        if _handed_out.intersection(ports) or not all(_bindable(p) for p in ports):
            continue
        _handed_out.update(ports)
        return ports
    raise RuntimeError(f"no {count} consecutive free ports found in {span.start}-{span.stop - 1}")


def free_port() -> int:
    """One free loopback port (see ``free_port_range``)."""
    return free_port_range(1)[0]
