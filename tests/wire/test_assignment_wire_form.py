"""A board's assignment names each topology's placement map once on the wire, and an
``Encoder`` packs that map once for every board's frame; decoding gives the full form back."""

from __future__ import annotations

import msgpack
import pytest

from squall import messages as M
from squall.wire import PROTOCOL_VERSION, Encoder, WireError, decode, encode

WHERE = {ex: f"host-{ex % 5}:{7000 + ex % 2}" for ex in range(40)}


def worker(topology: str, port: int, placement: dict[int, str]) -> M.WorkerAssignment:
    return M.WorkerAssignment(topology, port, [port - 7000], placement, True, 3, {"k": 1})


def board(name: str, where: dict[int, str] = WHERE) -> M.SupervisorAssignment:
    workers = [worker("t", 7000, where), worker("t", 7001, where), worker("u", 7002, {9: "h:7002"})]
    return M.SupervisorAssignment(name, 5, workers, term=2)


def raw(frame: bytes) -> dict:
    return msgpack.unpackb(frame, raw=False, strict_map_key=False)[2]


def test_the_map_is_named_once_per_board_and_decodes_to_every_worker():
    frame = encode(board("b1"))
    fields = raw(frame)
    assert fields["placements"] == {"t": WHERE, "u": {9: "h:7002"}}
    assert [w["placement"] for w in fields["workers"]] == [{}, {}, {}]
    got = decode(frame)
    assert got == board("b1") and got.placements == {}
    assert got.workers[0].placement is got.workers[1].placement  # one map for the topology
    assert encode(got) == frame


def test_an_encoder_packs_a_map_once_for_every_board_byte_for_byte():
    encoder = Encoder()
    frames = [encoder.encode(board(f"b{k}")) for k in range(50)]
    assert frames == [encode(board(f"b{k}")) for k in range(50)]
    assert encoder.packed_maps == 1 + 50  # WHERE once; each board's "u" map is a new object
    other = dict(WHERE)  # a new placement is a new map: packed anew, not mistaken for the old
    other[0] = "moved:7001"
    assert decode(encoder.encode(board("b0", other))).workers[0].placement[0] == "moved:7001"


def test_the_encoder_packs_a_shared_map_object_once():
    encoder = Encoder()
    shared_u = {9: "h:7002"}
    for k in range(50):
        workers = [worker("t", 7000, WHERE), worker("u", 7002, shared_u)]
        encoder.encode(M.SupervisorAssignment(f"b{k}", 1, workers))
    assert encoder.packed_maps == 2


def test_a_frame_of_a_nimbus_without_placements_decodes_as_before():
    old = {
        "supervisor_id": "b1",
        "version": 5,
        "workers": [
            {
                "topology": "t",
                "port": 7000,
                "executors": [0],
                "placement": WHERE,
                "active": True,
                "assignment_version": 3,
                "conf": {"k": 1},
                "paused": False,
                "states": {},
            }
        ],
        "term": 2,
    }
    got = decode(msgpack.packb([PROTOCOL_VERSION, "SupervisorAssignment", old], use_bin_type=True))
    assert got == M.SupervisorAssignment("b1", 5, [worker("t", 7000, WHERE)], term=2)


@pytest.mark.parametrize(
    "workers",
    [
        pytest.param([worker("t", 7000, WHERE), worker("t", 7001, {})], id="an empty placement stays empty"),
        pytest.param([worker("t", 7000, WHERE), worker("t", 7001, {1: "other:1"})], id="a different map stays its own"),
        pytest.param([worker("t", 7000, {})], id="nothing to share"),
    ],
)
def test_workers_that_do_not_share_the_map_keep_their_own(workers):
    msg = M.SupervisorAssignment("b1", 1, workers)
    assert decode(encode(msg)) == msg
    assert decode(Encoder().encode(msg)) == msg


def test_a_shared_map_of_the_wrong_shape_is_refused_naming_it():
    fields = raw(encode(board("b1")))
    fields["placements"] = {"t": {"x": "h:1"}}
    with pytest.raises(WireError, match="SupervisorAssignment.placements"):
        decode(msgpack.packb([PROTOCOL_VERSION, "SupervisorAssignment", fields], use_bin_type=True))
