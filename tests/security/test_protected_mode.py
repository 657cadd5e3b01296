"""Protected by default: without keys the daemons bind loopback only and refuse anything else
unless ``--insecure``; the REST API's token; discovery never overrides an explicit address.

Each test names the finding it reproduces (an open Nimbus ran ``squall submit`` code from
anyone on the LAN; a rogue discovery reply was accepted over the operator's address)."""

from __future__ import annotations

import stat
import subprocess
import time
import urllib.error
from pathlib import Path

import pytest

from squall.cli import main
from squall.daemon_start import nimbus_argv
from squall.ports import free_port
from tests.helpers import daemon, post_status

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def no_keys_in_env(monkeypatch):
    monkeypatch.delenv("SQUALL_KEYS", raising=False)
    monkeypatch.delenv("SQUALL_NIMBUS", raising=False)
    monkeypatch.delenv("SQUALL_HTTP_KEY", raising=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "::"])
def test_nimbus_without_keys_refuses_a_non_loopback_address(host, tmp_path, capsys):
    """The finding: without keys Nimbus bound 0.0.0.0 and ran anyone's submitted code."""
    assert main(["nimbus", "--host", host, "--data-dir", str(tmp_path / "d"), "--http-port", "0"]) == 2
    err = capsys.readouterr().err
    assert "without cluster keys" in err and "--keys" in err and "--insecure" in err
    assert not (tmp_path / "d").exists()  # refused before touching anything


@pytest.mark.parametrize("args", [["--host", "192.0.2.7"], ["--no-discovery", "--host", "0.0.0.0"]])
def test_a_supervisor_without_keys_refuses_a_non_loopback_address(args, tmp_path, capsys):
    assert (
        main(["supervisor", "--nimbus", "127.0.0.1:1", "--slots", "1", "--data-dir", str(tmp_path / "s"), *args]) == 2
    )
    assert "without cluster keys" in capsys.readouterr().err


def test_a_supervisor_without_keys_will_not_trust_discovery(tmp_path, capsys):
    """The finding: a rogue UDP reply to discovery was accepted (the first reply wins)."""
    started = time.monotonic()
    assert main(["supervisor", "--slots", "1", "--data-dir", str(tmp_path / "s"), "--discovery-timeout", "30"]) == 2
    assert time.monotonic() - started < 10  # refused at once, not after a search
    err = capsys.readouterr().err
    assert "discovery without cluster keys" in err and "--nimbus" in err


def test_an_explicit_address_wins_over_discovery(monkeypatch):
    """--nimbus (then $SQUALL_NIMBUS) is used as given; discovery is never asked."""
    import argparse

    from squall import discovery
    from squall.cli.supervisor import resolve_nimbus

    monkeypatch.setattr(discovery, "find_nimbuses", lambda *a, **k: pytest.fail("discovery was asked"))
    args = argparse.Namespace(
        nimbus="10.1.2.3:6627", no_discovery=False, cluster="squall", discovery_port=6628, discovery_timeout=1.0
    )
    assert resolve_nimbus(args) == ["10.1.2.3:6627"]
    monkeypatch.setenv("SQUALL_NIMBUS", "10.9.9.9:7000,10.9.9.8:7000")
    args.nimbus = None
    assert resolve_nimbus(args) == ["10.9.9.9:7000", "10.9.9.8:7000"]


def wait_for_line(path: Path, text: str, proc: subprocess.Popen, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        assert proc.poll() is None, f"nimbus exited {proc.returncode}:\n{content[-2000:]}"
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged within {timeout_s} s:\n{content[-2000:]}")


def test_nimbus_without_keys_binds_loopback_and_guards_posts_with_a_token_file(tmp_path):
    port, http_port = free_port(), free_port()
    log = tmp_path / "nimbus.log"
    with daemon(nimbus_argv(None, port, tmp_path / "d", http_port), log) as proc:
        text = wait_for_line(log, "nimbus listening on", proc)
        assert f"nimbus listening on tcp://127.0.0.1:{port}" in text
        token_file = tmp_path / "d" / "http-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert len(token) == 32 and token in token_file.read_text()

        def post(key: str | None) -> int:
            return post_status(f"http://127.0.0.1:{http_port}/api/v1/topology/nosuch/deactivate", key, timeout_s=10)

        deadline = time.monotonic() + 20
        while True:  # the HTTP port may come up a moment after the control plane
            try:
                status = post(None)
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert status == 401
        assert post("wrong") == 403
        assert post(token) == 404  # accepted, and the loop answered: no such topology


def test_nimbus_insecure_binds_every_address_and_warns(tmp_path):
    port = free_port()
    log = tmp_path / "nimbus.log"
    with daemon(nimbus_argv(None, port, tmp_path / "d", extra=["--no-discovery", "--insecure"]), log) as proc:
        text = wait_for_line(log, "nimbus listening on", proc)
        assert f"nimbus listening on tcp://0.0.0.0:{port}" in text
        assert "--insecure: listening on 0.0.0.0 without keys" in text
