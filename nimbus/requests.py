"""Validation of the CLI's topology requests (pure): each returns a value or raises
:class:`RequestError` whose message is the ``Reply.error`` the user sees.

Guarantees: a request that passes validation can be stored and scheduled (its spec parses,
its conf resolves and is JSON-serialisable, its scheduler exists, its parameters build);
nothing here touches the store.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from squall.bundle import MAX_BUNDLE_BYTES
from squall.messages import RebalanceTopology, RegisterSupervisor, SubmitTopology
from squall.nimbus import config as C
from squall.nimbus.graph import cycle_warnings
from squall.nimbus.records import TopologyRecord
from squall.rebalance import SCHEDULERS, InvalidInputError, SchedulerParams
from squall.topology.errors import TopologyError
from squall.topology.spec import ACKER_COMPONENT, TopologySpec

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # names become folder names on boards


class RequestError(ValueError):
    """A refused request; the message names what is wrong."""


@dataclass(frozen=True)
class Submission:
    spec: TopologySpec
    conf: dict[str, Any]
    scheduler: str
    warnings: tuple[str, ...] = ()  # accepted, but worth telling the user (cycles)


def spec_digest(spec: TopologySpec) -> str:
    """sha256 of the canonical JSON of a spec (changes when a rebalance changes parallelism)."""
    return hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()


def check_scheduler(name: str) -> str:
    if name == "partition" and importlib.util.find_spec("pymetis") is None:
        raise RequestError("the partition scheduler needs pymetis on Nimbus: pip install 'squall[partition]'")
    if name not in SCHEDULERS:
        raise RequestError(f"unknown scheduler {name!r}; known: {', '.join(sorted(SCHEDULERS))}")
    return name


def validate_submit(m: SubmitTopology, bundle_max: int) -> Submission:
    if not NAME_RE.match(m.name):
        raise RequestError(
            f"invalid topology name {m.name!r}: use letters, digits, '_', '.', '-' (at most 128, "
            "not starting with a punctuation mark)"
        )
    if m.workers is not None and not 1 <= m.workers <= C.MAX_WORKERS:
        raise RequestError(f"workers must be from 1 to {C.MAX_WORKERS}, got {m.workers}")
    check_scheduler(m.scheduler)
    bundle_max = min(bundle_max, MAX_BUNDLE_BYTES)  # never more than a board will unpack
    if len(m.bundle) > bundle_max:
        raise RequestError(f"bundle of {len(m.bundle)} bytes exceeds the limit of {bundle_max} bytes")
    data = m.spec
    if isinstance(data, dict):
        data = {**data, "name": m.name}  # the submitted name is the topology's name
    try:
        spec = TopologySpec.from_dict(data)
    except TopologyError as exc:
        raise RequestError(f"invalid topology: {exc}") from None
    try:
        conf = C.resolve_topology_conf(spec.config, m.conf, m.workers)
        SchedulerParams(**conf.get(C.SCHEDULER_PARAMS, {}))
    except C.ConfError as exc:
        raise RequestError(str(exc)) from None
    except (InvalidInputError, TypeError) as exc:
        raise RequestError(f"{C.SCHEDULER_PARAMS}: {exc}") from None
    conf[C.NAME] = m.name
    conf[C.SCHEDULER] = m.scheduler
    conf[C.SPEC_DIGEST] = spec_digest(spec)
    return Submission(spec, conf, m.scheduler, tuple(cycle_warnings(spec)))


def validate_rebalance(rec: TopologyRecord, m: RebalanceTopology) -> dict[str, Any]:
    """The pending change to apply when the wait is over: {"workers", "parallelism", "scheduler"}."""
    if m.workers is not None and not 1 <= m.workers <= C.MAX_WORKERS:
        raise RequestError(f"workers must be from 1 to {C.MAX_WORKERS}, got {m.workers}")
    if m.scheduler is not None:
        check_scheduler(m.scheduler)
    if m.wait_s is not None and m.wait_s < 0:
        raise RequestError(f"wait must be >= 0 seconds, got {m.wait_s:g}")
    for name, par in sorted(m.parallelism.items()):
        if name == ACKER_COMPONENT:
            if not 0 <= par <= C.MAX_WORKERS:
                raise RequestError(f"{ACKER_COMPONENT} executors must be from 0 to {C.MAX_WORKERS}, got {par}")
            continue
        try:
            comp = rec.spec.component(name)
        except KeyError:
            known = ", ".join(c.name for c in rec.spec.components)
            raise RequestError(f"topology {rec.name!r} has no component {name!r} (components: {known})") from None
        if par < 1 or par > comp.tasks:
            raise RequestError(
                f"component {name!r}: parallelism {par} must be between 1 and its task count {comp.tasks}"
            )
    return {"workers": m.workers, "parallelism": dict(m.parallelism), "scheduler": m.scheduler}


def apply_rebalance(rec: TopologyRecord, pending: dict[str, Any]) -> bool:
    """Apply a validated pending rebalance to ``rec`` (spec, conf, scheduler).

    Returns True when the executors changed (their ids no longer mean what they did).
    """
    parallelism: dict[str, int] = dict(pending.get("parallelism") or {})
    ackers = parallelism.pop(ACKER_COMPONENT, None)
    changed = False
    if parallelism:
        data = rec.spec.to_dict()
        for comp in data["components"]:
            if comp["name"] in parallelism and comp["par"] != parallelism[comp["name"]]:
                comp["par"] = parallelism[comp["name"]]
                changed = True
        rec.spec = TopologySpec.from_dict(data)
        rec.conf[C.SPEC_DIGEST] = spec_digest(rec.spec)
    if pending.get("workers") is not None:
        rec.conf[C.WORKERS] = int(pending["workers"])
    if ackers is not None and ackers != rec.ackers:
        rec.conf[C.ACKERS] = int(ackers)
        changed = True
    if pending.get("scheduler"):
        rec.scheduler = str(pending["scheduler"])
        rec.conf[C.SCHEDULER] = rec.scheduler
    return changed


def registration_fault(m: RegisterSupervisor, cluster: str) -> str:
    """Why a registration cannot be accepted, or "" when it can."""
    if m.cluster != cluster:
        return (
            f"supervisor {m.supervisor_id!r} belongs to cluster {m.cluster!r}, this Nimbus runs cluster "
            f"{cluster!r} (start it with --cluster {cluster})"
        )
    if not m.supervisor_id:
        return "supervisor_id must not be empty"
    if len(set(m.ports)) != len(m.ports) or any(not 0 < p < 65536 for p in m.ports):
        return f"ports must be distinct TCP ports, got {m.ports}"
    if not math.isfinite(m.capacity_hz) or m.capacity_hz < 0:
        return f"capacity_hz must be a finite number >= 0, got {m.capacity_hz!r}"
    if m.link_mbit is not None and not (math.isfinite(m.link_mbit) and m.link_mbit > 0):
        return f"link_mbit must be a finite number > 0 or unknown (None), got {m.link_mbit!r}"
    if m.link_delay_ms is not None and not (math.isfinite(m.link_delay_ms) and m.link_delay_ms >= 0):
        return f"link_delay_ms must be a finite number >= 0 or unknown (None), got {m.link_delay_ms!r}"
    return ""
