"""The cluster keys in one process: files, the CURVE handshake, the ZAP handler's refusals,
the REST API token and signed discovery on loopback."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import zmq
import zmq.utils.monitor

from squall import discovery as D
from squall import security
from squall.nimbus.http_inbox import KeyCheck

HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def keys(tmp_path: Path) -> security.ClusterKeys:
    return security.generate(tmp_path / "keys")


@pytest.fixture
def other_keys(tmp_path: Path) -> security.ClusterKeys:
    return security.generate(tmp_path / "other")


@pytest.fixture
def server(keys):
    """A CURVE PULL of the cluster on a free loopback port, in its own context."""
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    security.secure_server(pull, keys)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    yield pull, port
    pull.close(0)
    security.release(ctx)
    ctx.term()


def push_to(port: int, keys: security.ClusterKeys | None, ctx: zmq.Context) -> zmq.Socket:
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    security.secure_client(sock, keys)
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


def test_generate_writes_a_private_secret_and_load_reads_it_back(keys, tmp_path):
    secret = tmp_path / "keys" / "cluster.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    again = security.load(tmp_path / "keys")
    assert again == keys and len(keys.public) == 40 and len(keys.secret) == 40
    assert Path(keys.folder).is_absolute()


def test_generate_refuses_to_overwrite_and_load_names_the_missing_file(keys, tmp_path):
    with pytest.raises(security.KeyError_, match="exists"):
        security.generate(tmp_path / "keys")
    with pytest.raises(security.KeyError_, match="cluster.key_secret"):
        security.load(tmp_path / "nowhere")


def test_from_env_uses_the_explicit_folder_then_squall_keys(keys, monkeypatch):
    monkeypatch.delenv(security.KEYS_ENV, raising=False)
    assert security.from_env(None) is None
    monkeypatch.setenv(security.KEYS_ENV, keys.folder)
    assert security.from_env(None) == keys
    assert security.from_env(keys.folder) == keys


def test_a_cluster_member_gets_through(server, keys):
    pull, port = server
    ctx = zmq.Context()
    try:
        push = push_to(port, keys, ctx)
        push.send(b"hello")
        assert pull.poll(5000) and pull.recv() == b"hello"
        push.close(0)
    finally:
        ctx.term()


@pytest.mark.parametrize("who", ["no keys", "another cluster's keys", "the public key without its secret"])
def test_anyone_else_is_refused(server, keys, other_keys, who):
    pull, port = server
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.PUSH)
        sock.setsockopt(zmq.LINGER, 0)
        if who == "another cluster's keys":
            security.secure_client(sock, other_keys)
        elif who == "the public key without its secret":
            # Knows the server's (public) key, presents its own pair: ZAP accepts only the cluster key.
            sock.curve_serverkey = keys.public
            sock.curve_publickey, sock.curve_secretkey = other_keys.public, other_keys.secret
        # The server's own account of the refusal: a failed handshake, the positive signal that
        # the intruder reached it and was turned away (not merely that nothing came in time).
        monitor = pull.get_monitor_socket(HANDSHAKE_FAILED)
        try:
            sock.connect(f"tcp://127.0.0.1:{port}")
            try:
                sock.send(b"intruder", zmq.NOBLOCK)
            except zmq.Again:  # nothing to queue it for before a handshake succeeds
                pass
            assert monitor.poll(10_000), "the server saw no handshake fail"
            event = zmq.utils.monitor.recv_monitor_message(monitor)
            assert event["event"] & HANDSHAKE_FAILED, event
            assert pull.poll(0) == 0
        finally:
            pull.disable_monitor()
            monitor.close(0)
        sock.close(0)
    finally:
        ctx.term()


def test_without_keys_nothing_is_secured_and_release_is_idempotent():
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    security.secure_server(sock, None)
    security.secure_client(sock, None)
    assert sock.mechanism == zmq.NULL
    sock.close(0)
    security.release(ctx)
    security.release(ctx)
    ctx.term()


def test_the_api_token_is_stable_per_cluster_and_not_the_secret(keys, other_keys):
    token = keys.api_token()
    assert token == security.load(keys.folder).api_token()
    assert token != other_keys.api_token() and keys.secret.decode() not in token


def test_the_rest_key_check_falls_back_to_the_keys_token_and_an_explicit_key_wins(keys, monkeypatch):
    from squall.nimbus.http_inbox import KEY_ENV, ApiError

    monkeypatch.delenv(KEY_ENV, raising=False)
    check = KeyCheck.from_conf({}, fallback=keys.api_token())
    check.check({"X-Squall-Key": keys.api_token()})
    for headers, status in (({}, 401), ({"X-Squall-Key": "nope"}, 403)):
        with pytest.raises(ApiError) as err:
            check.check(headers)
        assert err.value.status == status
    explicit = KeyCheck.from_conf({"nimbus.http.key": "mine"}, fallback=keys.api_token())
    explicit.check({"X-Squall-Key": "mine"})
    with pytest.raises(ApiError) as closed:
        KeyCheck.from_conf({}, fallback=None).check({})  # no key at all: closed, not open
    assert closed.value.status == 401


def squall(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != security.KEYS_ENV}
    return subprocess.run(
        [sys.executable, "-m", "squall", *args], capture_output=True, text=True, timeout=60, env={**base, **(env or {})}
    )


def test_keygen_writes_keys_and_prints_the_token(tmp_path):
    made = squall("keygen", "--out", str(tmp_path / "k"))
    assert made.returncode == 0, made.stderr
    token = security.load(tmp_path / "k").api_token()
    assert token in made.stdout
    printed = squall("keygen", "--print-token", str(tmp_path / "k"))
    assert printed.returncode == 0 and printed.stdout.strip() == token
    from_env = squall("keygen", "--print-token", env={security.KEYS_ENV: str(tmp_path / "k")})
    assert from_env.stdout.strip() == token
    again = squall("keygen", "--out", str(tmp_path / "k"))
    assert again.returncode == 2 and "exists" in again.stderr
    missing = squall("list", "--keys", str(tmp_path / "none"))
    assert missing.returncode == 2 and "cluster.key_secret" in missing.stderr


# -- discovery, signed with the cluster secret (loopback, no namespaces) --------------------


@pytest.fixture
def responder():
    started: list[D.DiscoveryResponder] = []

    def start(key: bytes | None) -> D.DiscoveryResponder:
        r = D.DiscoveryResponder("lab", 7001, port=0, http_port=8080, key=key, bind="127.0.0.1").start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def test_a_keyed_nimbus_signs_its_reply_with_the_cluster_secret(responder, keys):
    r = responder(keys.secret)
    found = D.find_nimbuses("lab", r.port, timeout_s=3, key=keys.secret, targets=["127.0.0.1"], round_s=0.5)
    assert [f.address for f in found] == ["127.0.0.1:7001"]
    reply = D.parse(r.answer(D.make_request("lab", "n1", keys.secret)), "nimbus")
    assert keys.verify(D.canonical(reply), reply["mac"])  # the MAC is keys.sign() of the reply


def test_a_keyed_supervisor_rejects_unsigned_and_wrongly_signed_replies(responder, keys, other_keys):
    for key in (None, other_keys.secret):
        r = responder(key)
        assert D.search("lab", r.port, wait_s=0.5, key=keys.secret, targets=["127.0.0.1"]) == []
    # Forged by hand: a reply to the right nonce, unsigned or signed with another key.
    for key in (None, other_keys.secret):
        forged = D.make_reply({"cluster": "lab", "nonce": "n1"}, "10.0.0.9", 6627, 0, key)
        assert D.accept_reply(forged, "10.0.0.9", "lab", "n1", keys.secret) is None
    good = D.make_reply({"cluster": "lab", "nonce": "n1"}, "", 6627, 0, keys.secret)
    assert D.accept_reply(good, "10.0.0.9", "lab", "n1", keys.secret) == D.Found("10.0.0.9", 6627, "lab", 0)


def test_a_keyed_nimbus_ignores_a_supervisor_without_keys(responder, keys):
    r = responder(keys.secret)
    assert D.search("lab", r.port, wait_s=0.5, targets=["127.0.0.1"]) == []
    assert r.ignored == 1 and r.answered == 0
