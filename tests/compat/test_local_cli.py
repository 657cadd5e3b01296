"""``squall local`` runs the ported projects as their users run them (arguments after ``--``,
component logs at INFO), and fails loudly: a bad emit, a bolt that raises on every tuple or
a spout that only raises exits 1 with the first error and the counts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.cli.test_cli_local import number, table_rows

REPO = Path(__file__).resolve().parents[2]
PORTED = REPO / "examples" / "ported"

pytestmark = pytest.mark.timeout(180)


def squall(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "squall", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_streamparse_project_runs_with_component_logs_at_info() -> None:
    result = squall("local", str(PORTED / "wordcount" / "topologies" / "wordcount.py"), "--seconds", "1")
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    emitted = number(rows["word_spout"][3])
    assert emitted > 0 and number(rows["count_bolt"][5]) == emitted, "every word counted"
    assert "INFO squall.task.count_bolt." in result.stderr and "words so far" in result.stderr


def test_log_level_flag_hides_component_info_logs() -> None:
    result = squall(
        "local", str(PORTED / "wordcount" / "topologies" / "wordcount.py"), "--seconds", "1", "--log-level", "warning"
    )
    assert result.returncode == 0, result.stderr
    assert "words so far" not in result.stderr
    assert number(table_rows(result.stdout)["count_bolt"][5]) > 0


def test_heron_builder_script_gets_the_arguments_after_the_double_dash() -> None:
    script = str(PORTED / "heron" / "heron_examples" / "half_acking_topology.py")
    result = squall("local", script, "--seconds", "2.5", "--", "halfack")
    assert result.returncode == 0, result.stderr
    assert "topology 'halfack' ran" in result.stdout
    spout = table_rows(result.stdout)["word_spout"]
    acked, failed = number(spout[7]), number(spout[8])
    assert acked > 0 and abs(acked - failed) <= 2, "each of two bolt tasks fails every other tuple"
    assert "tick! " in result.stderr, "process_tick's self.log shows at INFO"
    missing = squall("local", script, "--seconds", "1")
    assert missing.returncode == 2 and "the script exited with 1 (arguments: [])" in missing.stderr


def test_heron_global_metrics_are_printed_at_the_end() -> None:
    result = squall(
        "local", str(PORTED / "heron" / "heron_examples" / "word_count_topology.py"), "--seconds", "1", "--", "wc"
    )
    assert result.returncode == 0, result.stderr
    executed = number(table_rows(result.stdout)["word_spout"][3])
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("metrics: ")]
    assert f"'count': {int(executed)}" in line, "one count per word, as the bolt counted"


FAILING = """
from squall import Bolt, Spout, Stream, Topology


class Numbers(Spout):
    outputs = ["n"]

    def initialize(self, conf, ctx):
        self.n = 0

    def next_tuple(self):
        self.n += 1
        if self.n <= 50:
            self.emit([self.n], self.n)


class {bolt_class}


class T(Topology):
    numbers = Numbers.spec()
    bolt = Faulty.spec(inputs=[numbers])
"""

CASES = {
    "undeclared stream": (
        """Faulty(Bolt):
    outputs = ["n"]

    def process(self, tup):
        self.emit([tup["n"]], "nope")
""",
        "bad emit(s); first error in task 1 (process): EmitError: 'bolt' emitted on undeclared stream 'nope'",
    ),
    "wrong arity": (
        """Faulty(Bolt):
    outputs = ["n"]

    def process(self, tup):
        self.emit([tup["n"], 2])
""",
        "EmitError: 'bolt' emitted 2 value(s) on stream 'default', which declares 1 field(s)",
    ),
    "raises on every tuple": (
        """Faulty(Bolt):
    def process(self, tup):
        raise ValueError("no")
""",
        "raised on every tuple (50 errors, 50 tuples); first error in task 1 (process): ValueError: no",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_component_makes_squall_local_exit_1_with_the_first_error(tmp_path: Path, case: str) -> None:
    bolt, expected = CASES[case]
    path = tmp_path / "broken.py"
    path.write_text(FAILING.format(bolt_class=bolt))
    result = squall("local", str(path), "--seconds", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "squall local: FAILED: bolt 'bolt': " in result.stderr
    assert expected in result.stderr


def test_a_spout_that_only_raises_fails_and_occasional_errors_do_not(tmp_path: Path) -> None:
    spout_only_raises = tmp_path / "spout.py"
    spout_only_raises.write_text(
        textwrap.dedent("""
        from squall import Spout, Topology
        from squall.topology.testing import CollectBolt

        class Broken(Spout):
            outputs = ["n"]

            def next_tuple(self):
                raise RuntimeError("no source")

        class T(Topology):
            broken = Broken.spec()
            sink = CollectBolt.spec(inputs=[broken])
    """)
    )
    result = squall("local", str(spout_only_raises), "--seconds", "1")
    assert result.returncode == 1
    assert "spout 'broken': raised" in result.stderr and "RuntimeError: no source" in result.stderr

    sometimes = tmp_path / "sometimes.py"
    sometimes.write_text(
        FAILING.format(
            bolt_class="""Faulty(Bolt):
    def process(self, tup):
        if tup["n"] % 10 == 0:
            raise ValueError("a tenth")
"""
        )
    )
    result = squall("local", str(sometimes), "--seconds", "1")
    assert result.returncode == 0, result.stderr
    assert number(table_rows(result.stdout)["bolt"][9]) == 5, "the errors are counted, the run is sound"


def test_a_component_whose_initialize_raises_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "init.py"
    path.write_text(
        FAILING.format(
            bolt_class="""Faulty(Bolt):
    def initialize(self, conf, ctx):
        raise OSError("database unreachable")
"""
        )
    )
    result = squall("local", str(path), "--seconds", "1")
    assert result.returncode == 1
    assert "a component failed to start: OSError: database unreachable" in result.stderr
