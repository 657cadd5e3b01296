"""The ported projects submit unchanged to a real local cluster (Nimbus, supervisors and
workers as processes on loopback) and run there: the streamparse layout through ``squall
submit``, heron's builder scripts with their arguments after ``--``, heron's class-declared
topology from its package; acking works across processes as their code implies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from squall.localcluster import LocalCluster
from tests.helpers import eventually

REPO = Path(__file__).resolve().parents[2]
PORTED = REPO / "examples" / "ported"
HERON = PORTED / "heron" / "heron_examples"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(supervisors=2, slots=2, data_dir=tmp_path_factory.mktemp("compat-cluster")) as c:
        yield c


def squall(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "squall", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=dict(os.environ),
    )


def flowing(cluster, name: str, src: str, dst: str):
    """The assignment once tuples are measured flowing from component ``src`` to ``dst``."""
    with cluster.client() as c:
        a = c.assignment(name)
    component = {e["id"]: e["component"] for e in a["executors"]}
    if any(not e["pid"] for e in a["executors"]):
        return None
    rates = [tps for s, d, tps in a["traffic"] if component.get(s) == src and component.get(d) == dst]
    return a if rates and sum(rates) > 0 else None


def stats_when(cluster, name: str, check):
    def probe():
        with cluster.client() as c:
            s = c.stats(name)
        return s if check(s) else None

    return probe


def kill(cluster, name: str) -> None:
    with cluster.client() as c:
        c.kill(name, 0)
    eventually(lambda: all(r["name"] != name for r in cluster.client().list()), what=f"{name} gone")


def test_streamparse_project_submits_with_its_layout_and_runs(cluster) -> None:
    result = squall(
        "submit",
        str(PORTED / "wordcount" / "topologies" / "wordcount.py"),
        "--name",
        "spwc",
        "--nimbus",
        cluster.nimbus_address,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    eventually(
        lambda: flowing(cluster, "spwc", "word_spout", "count_bolt"),
        timeout_s=60,
        what="words flowing from word_spout to count_bolt (bolts and spouts imported from src/ on the worker)",
    )
    kill(cluster, "spwc")


def test_heron_word_count_script_submits_with_its_argument_and_acks_every_tree(cluster) -> None:
    result = squall("submit", str(HERON / "word_count_topology.py"), "--nimbus", cluster.nimbus_address, "--", "hwc")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "submitted 'hwc'" in result.stdout
    stats = eventually(stats_when(cluster, "hwc", lambda s: s["acked"] > 500), timeout_s=60, what="hwc acking trees")
    assert stats["failed"] == 0, "the count bolt acks every tuple"
    kill(cluster, "hwc")


def test_heron_half_acking_fails_half_the_trees_across_processes(cluster) -> None:
    name = cluster.submit(str(HERON / "half_acking_topology.py"), args=["halfack"], workers=2)
    assert name == "halfack"
    stats = eventually(
        stats_when(cluster, name, lambda s: s["acked"] > 500 and s["failed"] > 500),
        timeout_s=60,
        what="halfack acking and failing",
    )
    # Counters are sampled per spout executor at slightly different moments: close, not equal.
    assert 0.8 < stats["acked"] / stats["failed"] < 1.25
    kill(cluster, name)


def test_heron_class_topology_from_its_package_runs_both_streams(cluster) -> None:
    name = cluster.submit(str(HERON / "multi_stream_topology.py"), name="hms")
    eventually(
        lambda: flowing(cluster, name, "spout", "stream_aggregator") and flowing(cluster, name, "spout", "count_bolt"),
        timeout_s=60,
        what="both bolts receiving",
    )
    kill(cluster, name)


def test_a_quickstart_project_submits_unchanged(cluster, tmp_path) -> None:
    from squall.cli import main

    assert main(["quickstart", "breeze", "--dir", str(tmp_path)]) == 0
    name = cluster.submit(str(tmp_path / "breeze" / "topologies" / "breeze.py"))
    assert name == "Breeze"
    stats = eventually(stats_when(cluster, name, lambda s: s["acked"] > 500), timeout_s=60, what="Breeze acking")
    assert stats["failed"] == 0
    kill(cluster, name)
