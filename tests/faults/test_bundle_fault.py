"""A bundle whose code does not import on the workers: each worker exits with the code-error
exit code and leaves the reason, its supervisor restarts it with backoff and then gives up
(no crash loop), and Nimbus marks the topology FAILED with the import error, which
``squall list`` shows."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time

import pytest

from squall.bundle import make_bundle
from squall.localcluster import LocalCluster
from squall.supervisor.state import MAX_FAST_FAILURES
from squall.topology.loader import load_topology
from tests.faults.fault_helpers import heard_from_every_supervisor_for
from tests.helpers import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

GOOD = textwrap.dedent("""
    from squall import Bolt, Spout, Topology

    class Nums(Spout):
        outputs = ["n"]
        def next_tuple(self):
            pass

    class Sink(Bolt):
        outputs = []
        def process(self, tup):
            pass

    class Broken(Topology):
        nums = Nums.spec(par=2)
        sink = Sink.spec(inputs=[nums], par=2)
""")


def test_a_bundle_that_fails_to_import_fails_its_topology_with_the_error(tmp_path):
    good, bad = tmp_path / "good" / "brokenapp.py", tmp_path / "bad" / "brokenapp.py"
    good.parent.mkdir()
    bad.parent.mkdir()
    good.write_text(GOOD)
    bad.write_text("import not_installed_pkg_xyz\n" + GOOD)  # what the workers get
    spec = load_topology(str(good)).spec.to_dict()
    with LocalCluster(supervisors=2, slots=2, data_dir=tmp_path / "cluster") as cluster:
        with cluster.client() as c:
            c.submit("broken", spec, make_bundle(bad), "round_robin", 2, {})
        started = time.monotonic()
        row = eventually(
            lambda: (lambda r: r if r["status"] == "FAILED" else None)(cluster.client().list()[0]),
            timeout_s=40,
            interval_s=0.2,
            what="topology FAILED",
        )
        failed_s = time.monotonic() - started
        assert "not_installed_pkg_xyz" in row["error"] and "ModuleNotFoundError" in row["error"], row
        assert "exited with code 4" in row["error"] and "gave up" in row["error"], row
        assert row["workers"] == 0
        # No crash loop: the boards keep running for seconds after giving up and start nothing.
        heard_from_every_supervisor_for(cluster, 3.0)
        assert cluster.worker_pids() == {}
        for node in cluster.node_ids:
            starts = re.findall(r"started worker broken:(\d+)", cluster.log(node))
            per_port = {p: starts.count(p) for p in set(starts)}
            assert all(n <= MAX_FAST_FAILURES for n in per_port.values()), per_port
        listed = subprocess.run(
            [sys.executable, "-m", "squall", "list", "--nimbus", cluster.nimbus_address],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "FAILED" in listed.stdout and "not_installed_pkg_xyz" in listed.stdout, listed.stdout + listed.stderr
    print(f"\nFAILED after {failed_s:.1f} s: {row['error'][:160]}")
