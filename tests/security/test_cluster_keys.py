"""A local cluster started with keys, real processes: members work end to end; a client, a
supervisor or a REST caller without the cluster key gets nothing done."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from squall import security
from squall.daemon_start import supervisor_argv
from squall.localcluster import LocalCluster
from squall.ports import free_port, free_port_range
from tests.helpers import REPO, WORDCOUNT, daemon, eventually, post_status, run_squall

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ENV = {k: v for k, v in os.environ.items() if k != security.KEYS_ENV}  # no stray keys


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> security.ClusterKeys:
    return security.generate(tmp_path_factory.mktemp("keys") / "cluster")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, keys):
    with LocalCluster(supervisors=2, slots=2, data_dir=tmp_path_factory.mktemp("keyed"), keys=keys.folder) as c:
        yield c


def squall(*args: str, timeout: float = 60.0, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_squall(*args, timeout_s=timeout, env={**ENV, **(env or {})})


def test_with_keys_wordcount_runs_end_to_end(cluster, keys):
    done = squall(
        "submit", WORDCOUNT, "--name", "wc", "--workers", "2", "--nimbus", cluster.nimbus_address, "--keys", keys.folder
    )
    assert done.returncode == 0, done.stdout + done.stderr

    def flowing():
        a = cluster.client().assignment("wc")
        nodes = {e["node"] for e in a["executors"] if e["pid"]}
        return a if len(nodes) == 2 and a["traffic"] and all(t > 0 for _, _, t in a["traffic"]) else None

    eventually(flowing, timeout_s=40, what="wc on both nodes with measured traffic")
    for how in (["--keys", keys.folder], []):  # --keys, then SQUALL_KEYS
        listed = squall(
            "list",
            "--json",
            "--nimbus",
            cluster.nimbus_address,
            *how,
            env={} if how else {security.KEYS_ENV: keys.folder},
        )
        assert listed.returncode == 0, listed.stderr
        assert [r["name"] for r in json.loads(listed.stdout)] == ["wc"]


@pytest.mark.parametrize("who", ["no keys", "another cluster's keys"])
def test_a_client_without_the_cluster_key_cannot_list_or_submit(cluster, tmp_path, who):
    extra = [] if who == "no keys" else ["--keys", security.generate(tmp_path / "other").folder]
    started = time.monotonic()
    listed = squall("list", "--nimbus", cluster.nimbus_address, "--timeout", "2", *extra)
    assert listed.returncode == 1 and "could not authenticate" in listed.stderr, listed.stderr
    submitted = squall(
        "submit", WORDCOUNT, "--name", "intruder", "--nimbus", cluster.nimbus_address, "--timeout", "2", *extra
    )
    assert submitted.returncode == 1 and "could not authenticate" in submitted.stdout, submitted.stdout
    assert time.monotonic() - started < 30, "no hang: each command gives up at its timeout"
    assert all(r["name"] != "intruder" for r in cluster.client().list())


def test_a_supervisor_without_the_cluster_key_never_registers(cluster, tmp_path):
    ports, metrics_port = free_port_range(1), free_port()
    log = tmp_path / "intruder.log"
    extra = ["--metrics-port", str(metrics_port)]
    argv = supervisor_argv(cluster.nimbus_address, "intruder", 1, tmp_path / "intruder", ports, extra)

    def registrations_sent(proc: subprocess.Popen) -> float:
        assert proc.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return 0.0  # not serving yet
        found = re.search(r'squall_supervisor_registrations_sent_total\{supervisor="intruder"\} ([0-9.e+]+)', text)
        return float(found.group(1)) if found else 0.0

    with daemon(argv, log, ENV) as proc:
        # It has tried five times, a heartbeat period apart (a member registers at its first).
        eventually(lambda: registrations_sent(proc) >= 5, timeout_s=60, what="five registration attempts")
        with cluster.client() as c:
            ids = {s["id"] for s in c.cluster()["supervisors"]}
        assert proc.poll() is None, log.read_text()
        assert "intruder" not in ids and set(cluster.node_ids) <= ids


def post(cluster, path: str, key: str | None) -> int:
    return post_status(f"http://127.0.0.1:{cluster.http_port}/api/v1{path}", key)


def test_rest_posts_need_the_keys_api_token(cluster, keys):
    assert post(cluster, "/topology/wc/deactivate", None) == 401
    assert post(cluster, "/topology/wc/deactivate", "guess") == 403
    assert post(cluster, "/topology/wc/deactivate", keys.api_token()) == 200
    eventually(lambda: cluster.client().list()[0]["status"] == "INACTIVE", what="wc deactivated")
    assert post(cluster, "/topology/wc/activate", keys.api_token()) == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{cluster.http_port}/api/v1/topology/summary", timeout=15) as r:
        assert r.status == 200  # reads stay open


def test_squall_cluster_keys_runs_a_keyed_cluster(tmp_path, keys):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "squall",
            "cluster",
            "--supervisors",
            "1",
            "--slots",
            "1",
            "--port",
            str(port),
            "--http-port",
            "0",
            "--data-dir",
            str(tmp_path / "c"),
            "--keys",
            keys.folder,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
        cwd=REPO,
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        assert any("links encrypted" in x for x in lines), "".join(lines)
        address = f"127.0.0.1:{port}"
        assert squall("list", "--nimbus", address, "--keys", keys.folder).returncode == 0
        assert squall("list", "--nimbus", address, "--timeout", "1").returncode == 1
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_keys_folder_is_absolute_in_worker_launch_files(cluster, keys):
    from squall import wire

    launches = list(Path(cluster.data_dir).glob("node-*/workers/*.launch"))
    assert launches
    assert {wire.decode(p.read_bytes()).keys_dir for p in launches} == {keys.folder}
