"""The ports in examples/ported/ are the originals (tests/compat/fixtures/original/, written in
streamparse's and heronpy's style) passed through docs/porting.md's one-line command and
nothing else: the same files, byte for byte."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ORIGINALS = REPO / "tests" / "compat" / "fixtures" / "original"
PORTED = REPO / "examples" / "ported"


def port_command() -> str:
    """The shell command under the ``port-command`` marker of docs/porting.md."""
    text = (REPO / "docs" / "porting.md").read_text()
    match = re.search(r"<!-- port-command -->\n```sh\n(.+?)\n```", text)
    assert match, "docs/porting.md lost its port-command block"
    return match.group(1)


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.skipif(shutil.which("sed") is None or shutil.which("find") is None, reason="needs sed and find")
@pytest.mark.parametrize("project", ["wordcount", "heron"])
def test_the_port_is_exactly_the_documented_sed_of_the_original(tmp_path: Path, project: str) -> None:
    work = tmp_path / project
    shutil.copytree(ORIGINALS / project, work)
    subprocess.run(port_command(), shell=True, cwd=work, check=True)
    ported, expected = tree(PORTED / project), tree(work)
    assert sorted(ported) == sorted(expected), "the same files"
    for name, data in expected.items():
        assert ported[name] == data, f"{name} differs from the sed of its original"
    originals = tree(ORIGINALS / project)
    changed = [n for n in originals if originals[n] != expected[n]]
    assert changed, "the originals import streamparse/heronpy, so the sed changes them"
    assert all(b"squall.compat." in expected[n] for n in changed)


def test_running_the_command_twice_changes_nothing_more(tmp_path: Path) -> None:
    work = tmp_path / "heron"
    shutil.copytree(PORTED / "heron", work)
    before = tree(work)
    subprocess.run(port_command(), shell=True, cwd=work, check=True)
    assert tree(work) == before
