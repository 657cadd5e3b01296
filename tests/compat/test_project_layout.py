"""Project layouts: a streamparse project (config.json, topologies/, src/), a package imported
from the project root (heron's), a plain file; what goes on the import path and what goes
in the bundle, flattened so the bundle's top folder is the one import root workers need."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from squall.bundle import BundleError, make_bundle
from squall.topology.project import FILE, PACKAGE, STREAMPARSE, LayoutError, detect_layout

REPO = Path(__file__).resolve().parents[2]
PORTED = REPO / "examples" / "ported"


def names(bundle: bytes) -> set[str]:
    return set(zipfile.ZipFile(io.BytesIO(bundle)).namelist())


def test_streamparse_project_puts_src_and_topologies_on_the_path_and_in_the_bundle() -> None:
    layout = detect_layout(PORTED / "wordcount" / "topologies" / "wordcount.py")
    assert layout.kind == STREAMPARSE and layout.module_name == "wordcount"
    assert layout.import_roots == (PORTED / "wordcount" / "src", PORTED / "wordcount" / "topologies")
    assert names(make_bundle(PORTED / "wordcount" / "topologies" / "wordcount.py")) == {
        "wordcount.py",
        "bolts/__init__.py",
        "bolts/wordcount.py",
        "spouts/__init__.py",
        "spouts/words.py",
    }


def test_a_topology_in_a_package_imports_by_its_dotted_path_from_the_project_root() -> None:
    layout = detect_layout(PORTED / "heron" / "heron_examples" / "word_count_topology.py")
    assert layout.kind == PACKAGE
    assert layout.module_name == "heron_examples.word_count_topology"
    assert layout.import_roots == (PORTED / "heron",)
    bundled = names(make_bundle(PORTED / "heron" / "heron_examples" / "word_count_topology.py"))
    assert {
        "heron_examples/__init__.py",
        "heron_examples/word_count_topology.py",
        "heron_examples/spout/word_spout.py",
        "heron_examples/bolt/count_bolt.py",
    } <= bundled
    assert all(n.startswith("heron_examples/") for n in bundled)


def test_a_plain_file_keeps_its_folder(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("")
    (tmp_path / "helpers.py").write_text("")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "scratch.py").write_text("")  # not a package: left out
    layout = detect_layout(tmp_path / "app.py")
    assert layout.kind == FILE and layout.import_roots == (tmp_path,)
    assert names(make_bundle(tmp_path / "app.py")) == {"app.py", "helpers.py"}


def _streamparse_project(root: Path, config: object = None) -> Path:
    (root / "topologies").mkdir(parents=True)
    (root / "src" / "bolts").mkdir(parents=True)
    (root / "config.json").write_text(json.dumps(config if config is not None else {"topology_specs": "topologies/"}))
    topology = root / "topologies" / "wc.py"
    topology.write_text("")
    (root / "src" / "bolts" / "count.py").write_text("")  # a namespace package: still bundled
    return topology


def test_streamparse_src_may_hold_namespace_packages(tmp_path: Path) -> None:
    topology = _streamparse_project(tmp_path)
    assert names(make_bundle(topology)) == {"wc.py", "bolts/count.py"}


def test_two_files_with_one_name_on_the_workers_path_are_refused_naming_both(tmp_path: Path) -> None:
    topology = _streamparse_project(tmp_path)
    (tmp_path / "src" / "wc.py").write_text("")
    with pytest.raises(BundleError, match=r"src/wc.py and .*topologies/wc.py would both be 'wc.py'"):
        make_bundle(topology)


def test_topology_specs_folder_comes_from_config_json(tmp_path: Path) -> None:
    topology = _streamparse_project(tmp_path, {"topology_specs": "flows/"})
    assert detect_layout(topology).kind == FILE, "topologies/ is not the folder config.json names"


def test_a_broken_config_json_is_named(tmp_path: Path) -> None:
    topology = _streamparse_project(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(LayoutError, match=r"config.json: not valid JSON"):
        detect_layout(topology)


def test_two_projects_with_the_same_package_names_load_in_one_process(tmp_path: Path) -> None:
    from squall.topology.loader import load_topology

    def project(root: Path, word: str) -> Path:
        topology = _streamparse_project(root)
        (root / "src" / "bolts" / "count.py").write_text(
            "from squall import Bolt\n\n"
            f"class Count(Bolt):\n    WORD = {word!r}\n\n    def process(self, tup):\n        pass\n"
        )
        topology.write_text(
            "from squall import Topology\nfrom squall.topology.testing import ListSpout\n"
            "from bolts.count import Count\n\n"
            "class Words(ListSpout):\n    outputs = ['w']\n\n"
            f"class T{word}(Topology):\n    words = Words.spec()\n    count = Count.spec(inputs=[words])\n"
        )
        return topology

    first = load_topology(str(project(tmp_path / "one", "one")))
    second = load_topology(str(project(tmp_path / "two", "two")))
    assert first.classes["count"].WORD == "one" and second.classes["count"].WORD == "two"
    import json as stdlib_json
    import sys

    assert sys.modules["json"] is stdlib_json, "modules from elsewhere stay loaded"
