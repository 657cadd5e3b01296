"""``squall quickstart NAME`` creates a project that runs with ``squall local``, whose own
test passes, and that is refused when the name or the folder is wrong. (Its submission to a
cluster is in test_ported_on_cluster.py, which has a cluster running.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli_local import number, table_rows

pytestmark = pytest.mark.timeout(180)


def squall(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "squall", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def quickstart(tmp_path: Path, name: str = "wordcount") -> Path:
    result = squall("quickstart", name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"squall local topologies/{name}.py" in result.stdout
    return tmp_path / name


def test_the_new_project_runs_in_squall_local_with_every_tree_acked(tmp_path: Path) -> None:
    project = quickstart(tmp_path)
    assert {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()} == {
        "README.md",
        "config.json",
        "pytest.ini",
        "topologies/wordcount.py",
        "src/spouts/__init__.py",
        "src/spouts/words.py",
        "src/bolts/__init__.py",
        "src/bolts/count.py",
        "tests/test_wordcount.py",
    }
    result = squall("local", "topologies/wordcount.py", "--seconds", "2", cwd=project)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    emitted, acked = number(rows["words"][3]), number(rows["words"][7])
    assert emitted > 0 and acked == emitted and number(rows["words"][8]) == 0
    assert number(rows["count"][5]) == emitted


def test_the_new_projects_own_test_passes(tmp_path: Path) -> None:
    project = quickstart(tmp_path, "gusts")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.parametrize("name", ["1abc", "with-dash", "_private"])
def test_a_name_that_cannot_name_a_module_is_refused(tmp_path: Path, name: str) -> None:
    result = squall("quickstart", name, cwd=tmp_path)
    assert result.returncode == 2 and f"project name {name!r} must be a Python identifier" in result.stderr
    assert not (tmp_path / name).exists()


def test_an_existing_folder_is_never_written_into(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    result = squall("quickstart", "taken", cwd=tmp_path)
    assert result.returncode == 2 and "already exists" in result.stderr
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
