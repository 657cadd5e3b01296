"""Finding the topology in a user's file (``FILE.py`` or ``FILE.py:Class``): topologies
written in the file or built there by a factory count; ones merely imported do not."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from squall.topology.loader import LoadError, load_topology, resolve_class

HOME = """
from squall import Topology
from squall.topology.testing import CollectBolt, ListSpout


class Items(ListSpout):
    outputs = ["n"]


def make(name):
    items = Items.spec()
    return type("Made", (Topology,), {"name": name, "items": items, "sink": CollectBolt.spec(inputs=[items])})


class Imported(Topology):
    items = Items.spec()
    sink = CollectBolt.spec(inputs=[items])
"""


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A folder of user files; sys.path and sys.modules are restored afterwards."""
    path, modules = list(sys.path), set(sys.modules)
    (tmp_path / "loader_home.py").write_text(textwrap.dedent(HOME))
    yield tmp_path
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def _write(folder: Path, name: str, source: str) -> str:
    (folder / name).write_text(textwrap.dedent(source))
    return str(folder / name)


def test_a_topology_built_by_a_factory_in_the_file_is_found(folder: Path) -> None:
    target = _write(folder, "loader_factory.py", "from loader_home import make\nChain = make('chain')\n")
    assert load_topology(target).spec.name == "chain"


def test_a_topology_only_imported_into_the_file_is_not_its_topology(folder: Path) -> None:
    target = _write(folder, "loader_imports.py", "from loader_home import Imported\n")
    with pytest.raises(LoadError, match="defines no topology"):
        load_topology(target)


def test_an_imported_topology_does_not_make_the_files_own_one_ambiguous(folder: Path) -> None:
    target = _write(
        folder,
        "loader_own.py",
        """
        from squall import Topology
        from squall.topology.testing import CollectBolt
        from loader_home import Imported, Items


        class Own(Topology):
            items = Items.spec()
            sink = CollectBolt.spec(inputs=[items])
    """,
    )
    assert load_topology(target).spec.name == "Own"


def test_resolve_class_finds_a_component_by_its_class_ref() -> None:
    from squall.experiments.reference import ChainSpout

    assert resolve_class("squall.experiments.reference:ChainSpout") is ChainSpout
    with pytest.raises(TypeError, match="is not a class"):
        resolve_class("squall.experiments.reference:busy_loop")
