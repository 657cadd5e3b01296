"""Scripts that build their topology at run time (heronpy's ``TopologyBuilder`` then
``build_and_submit()`` under ``if __name__ == '__main__':``): their classes are named for the
module workers import, classes hidden in the main block are refused, and outside the
``squall`` command ``build_and_submit`` says how to run the file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from squall.topology.loader import LoadError, load_topology

SCRIPT = """
import sys

from squall.compat.heronpy.api.bolt.bolt import Bolt
from squall.compat.heronpy.api.spout.spout import Spout
from squall.compat.heronpy.api.stream import Grouping
from squall.compat.heronpy.api.topology import TopologyBuilder


class Letters(Spout):
  outputs = ['letter']

  def next_tuple(self):
    self.emit(['a'])


class Sink(Bolt):
  def process(self, tup):
    pass

{extra}
if __name__ == '__main__':
  builder = TopologyBuilder(name=sys.argv[1])
  letters = builder.add_spout("letters", Letters, par=1)
  builder.add_bolt("sink", {sink}, par=2, inputs={{letters: Grouping.SHUFFLE}})
  builder.build_and_submit()
"""


def write(tmp_path: Path, extra: str = "", sink: str = "Sink") -> Path:
    path = tmp_path / "letters_topology.py"
    path.write_text(SCRIPT.format(extra=extra, sink=sink))
    return path


def test_classes_defined_in_the_script_are_named_by_the_module_workers_import(tmp_path: Path) -> None:
    topology = load_topology(str(write(tmp_path)), ["letters"])
    assert topology.spec.name == "letters"
    refs = {c.name: c.class_ref for c in topology.spec.components}
    assert refs == {"letters": "letters_topology:Letters", "sink": "letters_topology:Sink"}
    module = sys.modules["letters_topology"]
    assert topology.classes["sink"] is module.Sink, "the class workers resolve is the one run here"


def test_a_class_defined_inside_the_main_block_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, sink="Hidden")
    text = path.read_text().replace(
        "  builder = TopologyBuilder", "  class Hidden(Sink):\n    pass\n\n  builder = TopologyBuilder"
    )
    path.write_text(text)
    with pytest.raises(LoadError, match=r"component 'sink' uses class 'Hidden' defined inside"):
        load_topology(str(path), ["letters"])


def test_build_and_submit_outside_squall_says_how_to_run_the_file(tmp_path: Path) -> None:
    path = write(tmp_path)
    result = subprocess.run([sys.executable, str(path), "letters"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "run this file with `squall local FILE -- ARGS` or `squall submit FILE -- ARGS`" in result.stderr


def test_a_file_that_never_mentions_build_and_submit_is_not_run_as_main(tmp_path: Path) -> None:
    path = tmp_path / "tool.py"
    marker = tmp_path / "ran"
    path.write_text(
        textwrap.dedent(f"""
        if __name__ == "__main__":
            open({str(marker)!r}, "w").close()
    """)
    )
    with pytest.raises(LoadError, match="defines no topology"):
        load_topology(str(path))
    assert not marker.exists()
