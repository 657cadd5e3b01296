"""Plain-text tables for the terminal (no dependency: small boards have small screens)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned first column, right-aligned others; floats with sensible precision."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [values[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(values[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v >= 100:
            return f"{v:,.0f}"
        return f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def component_table(summaries: Sequence[Any], seconds: float) -> str:
    """Storm UI's columns per component, plus executed/s."""
    rows = [
        (
            s.component,
            s.kind,
            s.executors,
            s.emitted,
            s.transferred,
            s.executed,
            s.executed / seconds if seconds > 0 else None,
            s.acked,
            s.failed,
            s.errors,
            s.complete_latency_ms,
            s.p99_latency_ms,
        )
        for s in summaries
    ]
    return table(
        [
            "component",
            "kind",
            "exec",
            "emitted",
            "transferred",
            "executed",
            "executed/s",
            "acked",
            "failed",
            "errors",
            "latency ms",
            "p99 ms",
        ],
        rows,
    )
