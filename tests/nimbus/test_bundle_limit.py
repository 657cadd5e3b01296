"""One bundle size limit everywhere: what Nimbus takes, the wire carries and a board unpacks.

The finding: the client allowed 16 MiB bundles, Nimbus 32 MiB, and boards refused what Nimbus
had accepted, so a topology could be submitted that no board would ever run. No sockets.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from squall import messages as M
from squall import wire
from squall.bundle import MAX_BUNDLE_BYTES, BundleError, extract_bundle
from tests.nimbus.nimbus_helpers import chain_spec, new_state, register, reply

MEMBER = "topology.py"


def bundle_of_size(size: int) -> bytes:
    """A valid bundle (a zip holding one stored file) of exactly ``size`` bytes."""

    def zipped(payload: int) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(zipfile.ZipInfo(MEMBER, date_time=(2020, 1, 1, 0, 0, 0)), b"#" * payload)
        return buf.getvalue()

    overhead = len(zipped(0))  # stored, no zip64 below 4 GiB: the overhead does not depend on the size
    data = zipped(size - overhead)
    assert len(data) == size
    return data


def submitted(bundle: bytes, conf: dict | None = None) -> M.Reply:
    st = new_state(**(conf or {}))
    register(st, "n1", [6700], 0.0)
    msg = M.SubmitTopology(1, "t", chain_spec(), bundle, "round_robin", 1, {})
    return reply(st.handle(b"cli", wire.decode(wire.encode(msg)), 1.0))


def test_the_largest_bundle_nimbus_takes_crosses_the_wire_and_unpacks_on_a_board(tmp_path: Path):
    bundle = bundle_of_size(MAX_BUNDLE_BYTES)
    answer = submitted(bundle)
    assert answer.ok, answer.error
    unpacked = extract_bundle(bundle, tmp_path / "board")
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        assert (unpacked / MEMBER).stat().st_size == zf.getinfo(MEMBER).file_size > MAX_BUNDLE_BYTES - 200


def test_one_byte_more_is_refused_by_nimbus_and_by_a_board(tmp_path: Path):
    bundle = bundle_of_size(MAX_BUNDLE_BYTES + 1)
    answer = submitted(bundle)
    assert not answer.ok and f"exceeds the limit of {MAX_BUNDLE_BYTES} bytes" in answer.error
    with pytest.raises(BundleError, match="exceeds the limit"):
        extract_bundle(bundle, tmp_path / "board")


def test_a_nimbus_conf_cannot_raise_the_limit_above_what_boards_unpack():
    """``nimbus.bundle.max.bytes`` may lower the limit, never raise it (the conf bound refuses
    a larger value at start; the check at submit holds even if one slipped through)."""
    from squall.nimbus.config import ConfError, check_nimbus_conf

    with pytest.raises(ConfError, match="nimbus.bundle.max.bytes"):
        check_nimbus_conf({"nimbus.bundle.max.bytes": 2 * MAX_BUNDLE_BYTES})
    lowered = submitted(bundle_of_size(4096), {"nimbus.bundle.max.bytes": 1024})
    assert not lowered.ok and "exceeds the limit of 1024 bytes" in lowered.error
