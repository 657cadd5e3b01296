"""``squall local``: runs a topology file in one process and prints per-component counts;
bad input (missing file, import error, no topology, several unnamed, bad options) exits 2
with one clear line on stderr and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

TOPOLOGY_A = """
from squall import Bolt, Spout, Topology
from squall.topology.testing import CollectBolt, ListSpout


class Items(ListSpout):
    outputs = ["n"]
    items = [[i] for i in range(10)]


class A(Topology):
    items = Items.spec()
    sink = CollectBolt.spec(inputs=[items])
"""

TOPOLOGY_B = """

class B(Topology):
    items = Items.spec()
    other = CollectBolt.spec(inputs=[items])
"""


def squall(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``python -m squall ARGS`` and return the finished process (text output)."""
    return subprocess.run([sys.executable, "-m", "squall", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def table_rows(stdout: str) -> dict[str, list[str]]:
    """Component table rows by component name (numbers with thousands separators)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("component"))
    return {line.split()[0]: line.split() for line in lines[start + 2 :] if line.strip()}


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


def assert_usage_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("squall local: "), proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


# -- the happy paths -------------------------------------------------------------------


def test_wordcount_example_prints_counts_for_split_and_count() -> None:
    proc = squall("local", "examples/wordcount.py", "--seconds", "1")
    assert proc.returncode == 0, proc.stderr
    assert "topology 'WordCount' ran" in proc.stdout
    rows = table_rows(proc.stdout)
    assert {"sentences", "split", "count", "__acker"} <= set(rows)
    header = proc.stdout.splitlines()[2].split()
    executed = header.index("executed")
    emitted = header.index("emitted")
    assert number(rows["split"][executed]) > 0
    assert number(rows["count"][executed]) > 0
    assert number(rows["split"][emitted]) >= number(rows["split"][executed])  # >= 1 word per sentence
    assert number(rows["count"][executed]) == number(rows["split"][emitted])  # every word counted


def test_the_reference_chain_example_built_by_a_factory_runs() -> None:
    proc = squall("local", "examples/reference_chain.py", "--seconds", "0.3")
    assert proc.returncode == 0, proc.stderr
    assert "topology 'reference-chain' ran" in proc.stdout
    rows = table_rows(proc.stdout)
    assert {"spout", "stage1", "stage2"} <= set(rows)


def test_json_output_and_config_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "app.py", TOPOLOGY_A)
    proc = squall("local", str(path), "--seconds", "0.2", "--json", "--set", "topology.acker.executors=0")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["topology"] == "A"
    by_name = {c["component"]: c for c in report["components"]}
    assert set(by_name) == {"items", "sink"}  # acking off: no acker row
    assert by_name["sink"]["executed"] == 10 and by_name["items"]["acked"] == 10


def test_one_of_several_topologies_can_be_named(tmp_path: Path) -> None:
    path = write(tmp_path, "two.py", TOPOLOGY_A + TOPOLOGY_B)
    proc = squall("local", f"{path}:B", "--seconds", "0.2")
    assert proc.returncode == 0, proc.stderr
    assert "topology 'B' ran" in proc.stdout
    assert "other" in table_rows(proc.stdout)


# -- bad input -------------------------------------------------------------------------


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    assert_usage_error(squall("local", str(tmp_path / "nope.py")), "nope.py: no such file")


def test_a_file_that_raises_at_import_exits_2_with_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.py", "raise RuntimeError('boom at import')\n")
    assert_usage_error(squall("local", str(path)), "broken.py: import failed: RuntimeError: boom at import")


def test_a_file_with_a_syntax_error_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "syntax.py", "def (:\n")
    assert_usage_error(squall("local", str(path)), "syntax.py: import failed: SyntaxError")


def test_a_file_without_a_topology_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.py", "from squall import Topology\nX = 1\n")
    assert_usage_error(squall("local", str(path)), "defines no topology")


def test_several_topologies_without_one_named_exits_2_listing_them(tmp_path: Path) -> None:
    path = write(tmp_path, "two.py", TOPOLOGY_A + TOPOLOGY_B)
    assert_usage_error(squall("local", str(path)), "defines several topologies (A, B)", f"{path}:NAME")


def test_an_invalid_topology_exits_2_with_the_validation_message(tmp_path: Path) -> None:
    source = TOPOLOGY_A.replace("inputs=[items]", "inputs=[items], par=0")
    path = write(tmp_path, "invalid.py", source)
    assert_usage_error(squall("local", str(path)), "invalid topology: component 'sink': par must be >= 1")


@pytest.mark.parametrize(
    "suffix, fragment",
    [(":Nope", "no class 'Nope' (topologies here: A)"), (":Items", "'Items' is not a Topology subclass")],
    ids=["unknown class", "not a topology"],
)
def test_naming_a_class_that_is_not_a_topology_exits_2(tmp_path: Path, suffix: str, fragment: str) -> None:
    path = write(tmp_path, "one.py", TOPOLOGY_A)
    assert_usage_error(squall("local", f"{path}{suffix}"), fragment)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["app.txt"], "expected FILE.py or FILE.py:TopologyClass"),
        (["app.py", "--seconds", "0"], "--seconds must be > 0"),
        (["app.py", "--set", "novalue"], "--set expects KEY=VALUE, got 'novalue'"),
    ],
    ids=["not a python file", "non-positive seconds", "malformed --set"],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str], fragment: str) -> None:
    write(tmp_path, "app.py", TOPOLOGY_A)
    assert_usage_error(squall("local", *args, cwd=tmp_path), fragment)
