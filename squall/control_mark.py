"""DSCP marking of the control plane: the sockets between supervisors and Nimbus.

A board's link carries its data tuples and its heartbeats alike. When the data saturate it,
heartbeats that wait (or are dropped) in the same queue make Nimbus declare a live board
dead. Wi-Fi's WMM gives packets marked with a high DSCP a higher access category (the usual
mapping takes the 802.1D user priority from the DSCP's top three bits: CS5 is priority 5,
"video"), and a wired switch or router may be configured to prefer them the same way. So
the control sockets carry DSCP CS5 ("signalling"), and the data plane stays best effort.

Guarantees: :func:`mark_control` sets ``zmq.TOS`` before the socket binds or connects, so
every TCP connection it makes or accepts carries the mark from its first packet (libzmq
applies the option to each new connection's file descriptor); DSCP 0 leaves the socket
unmarked, as it was before; :func:`check_dscp` refuses anything but an integer 0-63 with a
message naming the setting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import zmq

CS5 = 40  # "signalling" (RFC 4594): WMM's video access category on a Wi-Fi link
DEFAULT_CONTROL_DSCP = CS5
NIMBUS_CONTROL_DSCP = "nimbus.control.dscp"  # ``squall nimbus --set``
SUPERVISOR_CONTROL_DSCP = "supervisor.control.dscp"  # ``squall supervisor --set``


def tos_byte(dscp: int) -> int:
    """The IP TOS byte carrying ``dscp`` (the DSCP is its top six bits; ECN, the low two,
    is left to the kernel)."""
    return dscp << 2


def check_dscp(value: Any, setting: str) -> int:
    """``value`` as a DSCP (an integer 0-63), else ValueError naming ``setting``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 63:
        raise ValueError(f"{setting} must be a DSCP, an integer from 0 to 63 (40 = CS5, 0 = unmarked), got {value!r}")
    return value


def mark_control(sock: zmq.Socket, dscp: int) -> None:
    """Mark every connection ``sock`` will make or accept with ``dscp``; call it before
    ``bind``/``connect`` (libzmq reads the option when a connection is set up)."""
    import zmq  # here, not above: Nimbus's config reads this module's constants, and what imports
    # that config (the schedulers' callers) need not load ZeroMQ

    sock.setsockopt(zmq.TOS, tos_byte(check_dscp(dscp, "control DSCP")))
