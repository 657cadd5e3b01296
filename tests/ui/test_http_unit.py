"""The HTTP port in-process, no supervisors: the loop inbox, the key hook (off by default),
JSON errors, and that a POST waits for the server loop instead of touching the state."""

from __future__ import annotations

import threading

import pytest

from squall import messages as M
from squall.localcluster import free_port
from squall.nimbus.http_api import ApiError, KeyCheck, LoopInbox
from squall.nimbus.server import NimbusServer
from squall.nimbus.state import NimbusState, Send
from squall.nimbus.store import Store
from tests.ui.conftest import call

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.delenv("SQUALL_HTTP_KEY", raising=False)
    http_port = free_port()
    srv = NimbusServer(NimbusState(Store(":memory:")), "127.0.0.1", free_port(), http_port)
    loop = threading.Thread(target=srv.run, daemon=True)
    loop.start()
    yield srv, f"http://127.0.0.1:{http_port}"
    srv.stop()
    loop.join(10)


def test_without_a_key_posts_are_open_and_errors_are_json(server):
    _srv, base = server
    status, body = call(base, "/api/v1/topology/nosuch/deactivate", "POST")
    assert status == 404 and body == {"error": "Not Found", "errorMessage": "no topology named 'nosuch'",
                                       "status": 404}
    assert call(base, "/api/v1/topology/summary") == (200, {"topologies": [], "schedulerDisplayResource": False})
    assert call(base, "/api/v1/cluster/summary")[1]["supervisors"] == 0
    assert call(base, "/api/v1/topology/x/rebalance/0", "POST", raw=b"[1, 2]")[0] == 400
    assert call(base, "/api/v1/topology/x/rebalance/-1", "POST")[0] == 400
    assert call(base, "/api/v1/nimbus/summary")[1]["nimbuses"][0]["status"] == "Leader"
    assert call(base, "/nothing/here")[0] == 404


def test_the_key_hook_refuses_missing_and_wrong_keys_and_is_off_by_default(monkeypatch):
    keys = KeyCheck.from_conf({"nimbus.http.key": "s3cret"})
    assert keys.key == "s3cret"
    with pytest.raises(ApiError) as missing:
        keys.check({})
    with pytest.raises(ApiError) as wrong:
        keys.check({"X-Squall-Key": "guess"})
    assert (missing.value.status, wrong.value.status) == (401, 403)
    keys.check({"X-Squall-Key": "s3cret"})
    monkeypatch.delenv("SQUALL_HTTP_KEY", raising=False)
    KeyCheck.from_conf({}).check({})  # off by default: passes without a header
    monkeypatch.setenv("SQUALL_HTTP_KEY", "from-env")
    assert KeyCheck.from_conf({}).key == "from-env"


def test_inbox_replies_come_back_and_other_commands_go_to_the_loop():
    inbox = LoopInbox()
    got: list = []

    def handle(peer, msg):
        return [Send(b"supervisor-1", M.RegisterReply(ok=True)), Send(peer, M.Reply(rid=msg.rid, ok=True, data="done"))]

    waiter = threading.Thread(target=lambda: got.append(inbox.submit(M.SetActive, name="t", active=False)))
    waiter.start()
    out: list = []
    while waiter.is_alive():
        out += inbox.drain(handle)
        waiter.join(0.01)
    assert got[0].ok and got[0].data == "done"
    assert out == [Send(b"supervisor-1", M.RegisterReply(ok=True))]


def test_inbox_times_out_when_no_loop_drains_it():
    with pytest.raises(ApiError) as exc:
        LoopInbox().submit(M.SetActive, timeout_s=0.05, name="t", active=True)
    assert exc.value.status == 504
