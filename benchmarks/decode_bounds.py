"""Peak memory of decoding hostile frames: plain msgpack (what the codec did before) against
``squall.wire.decode`` (bounded per message kind). Prints one line per frame.

    python benchmarks/decode_bounds.py

tracemalloc peaks, so Python allocations only; figures are stable across runs (no timing).
"""

from __future__ import annotations

import tracemalloc

import msgpack

from squall import messages as _registers_the_message_types  # noqa: F401
from squall import wire

MiB = 1024 * 1024


def nested_empties(count: int) -> bytes:
    rows, rest = divmod(count, 1000)
    return msgpack.packb([[{}] * 1000] * rows + ([[{}] * rest] if rest else []))


FRAMES = {
    "Heartbeat, 2.9 MiB of nested empty maps": ("Heartbeat", nested_empties(2_900_000)),
    "KillTopology, 0.9 MiB of nested empty maps": ("KillTopology", nested_empties(900_000)),
    "Reply, 450k short strings in one array": ("Reply", b"\xdd" + (450_000).to_bytes(4, "big") + b"\xa2ab" * 450_000),
    "SubmitTopology, 16 MiB of nested empty maps": ("SubmitTopology", nested_empties(16_000_000)),
}


def peak(fn) -> tuple[int, str]:
    tracemalloc.start()
    try:
        try:
            fn()
            outcome = "decoded"
        except Exception as exc:  # the point is what it costs to get here
            outcome = str(exc)[:70]
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


def main() -> None:
    print(f"{'frame':48} {'bytes':>9} {'msgpack':>10} {'wire.decode':>12}  outcome")
    for label, (kind, fields) in FRAMES.items():
        frame = b"\x93\x01" + msgpack.packb(kind) + fields
        before, _ = peak(lambda frame=frame: msgpack.unpackb(frame, strict_map_key=False))
        after, outcome = peak(lambda frame=frame: wire.decode(frame))
        print(f"{label:48} {len(frame) / MiB:7.1f}Mi {before / MiB:8.1f}Mi {after / MiB:10.1f}Mi  {outcome}")


if __name__ == "__main__":
    main()
