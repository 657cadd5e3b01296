"""PNG plots of the experiments (matplotlib, imported here only, with the Agg backend so no
display is needed). One colour and marker per scheduler, the same in every figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

STYLE = {
    "round_robin": ("tab:red", "o", "round_robin (Storm default)"),
    "offline": ("tab:orange", "s", "offline"),
    "online": ("tab:blue", "^", "online"),
    "partition": ("tab:gray", "d", "partition (METIS reference)"),
    "latency": ("tab:green", "v", "latency"),
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def lines(
    agg: list[dict[str, Any]], x: str, y: str, path: Path, title: str, xlabel: str, ylabel: str, logx: bool = False
) -> None:
    """One line per scheduler of ``y`` (mean, error bars = standard deviation) against ``x``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for sched, (colour, marker, label) in STYLE.items():
        pts = sorted(
            (a[x], a[y], a.get(f"{y}_std", 0.0))
            for a in agg
            if a["scheduler"] == sched and isinstance(a[y], float) and math.isfinite(a[y])
        )
        if pts:
            xs, ys, es = zip(*pts)
            ax.errorbar(xs, ys, yerr=es, color=colour, marker=marker, label=label, capsize=3)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log", base=2)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def timeline(bins: list[dict[str, Any]], switches: dict[str, list[float]], path: Path, title: str) -> None:
    """Latency per second since the workers ran, one line per scheduler (repetitions averaged
    per second); a dotted line at every repetition's rebalance of each adaptive scheduler."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for sched, (colour, _marker, label) in STYLE.items():
        per_t: dict[float, list[float]] = {}
        for b in bins:
            if b["scheduler"] == sched:
                per_t.setdefault(b["t_s"], []).append(b["latency_avg_ms"])
        if per_t:
            ts = sorted(per_t)
            ax.plot(ts, [sum(per_t[t]) / len(per_t[t]) for t in ts], color=colour, label=label, linewidth=1.2)
        for at in switches.get(sched, []):
            ax.axvline(at, color=colour, linestyle=":", linewidth=1)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("seconds since the workers ran")
    ax.set_ylabel("average latency per second (ms)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
