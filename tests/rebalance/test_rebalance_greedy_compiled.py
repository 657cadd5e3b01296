"""Which pair greedy runs: the compiled build only when it was built from this ``greedy.py``
and ``SQUALL_PURE_PYTHON=1`` is not set; the Python one otherwise (setup.py, greedy.py).

CI runs tests/rebalance twice, as installed and with ``SQUALL_PURE_PYTHON=1``; the first test
here fails either run if the variable is ignored or a fresh build is not used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from squall.rebalance import greedy

SOURCE = Path(greedy.__file__).read_bytes() if greedy.__file__.endswith(".py") else b""
BUILD = importlib.util.find_spec(greedy.COMPILED_MODULE)


def _fresh_build() -> bool:
    """Whether a compiled build of this very greedy.py is installed."""
    if BUILD is None:
        return False
    module = importlib.import_module(greedy.COMPILED_MODULE)
    return getattr(module, "SOURCE_SHA256", None) == hashlib.sha256(SOURCE).hexdigest()


def test_this_process_uses_the_greedy_its_environment_asks_for():
    forced_pure = os.environ.get("SQUALL_PURE_PYTHON") == "1"
    expected = _fresh_build() and not forced_pure
    assert greedy.COMPILED is expected, greedy.IMPLEMENTATION
    # The names the schedulers import are the ones COMPILED says.
    module = greedy.COMPILED_MODULE if expected else "squall.rebalance.greedy"
    assert greedy.PairGreedy.__module__ == module
    assert greedy.Level.__module__ == module
    assert greedy.IMPLEMENTATION.startswith("compiled" if expected else "python")
    if forced_pure:
        assert greedy.IMPLEMENTATION == "python (SQUALL_PURE_PYTHON=1)"


def _implementation(pure: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SQUALL_PURE_PYTHON"}
    if pure is not None:
        env["SQUALL_PURE_PYTHON"] = pure
    code = "from squall.rebalance import greedy; print(greedy.COMPILED, greedy.IMPLEMENTATION)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_the_variable_forces_the_python_greedy_in_a_new_process():
    assert _implementation("1") == "False python (SQUALL_PURE_PYTHON=1)\n"


@pytest.mark.skipif(not _fresh_build(), reason="no compiled build of this greedy.py is installed")
def test_a_fresh_build_is_used_unless_the_variable_says_pure():
    assert _implementation(None).startswith("True compiled (")
    assert _implementation("0").startswith("True compiled (")


@pytest.mark.skipif(not _fresh_build(), reason="no compiled build of this greedy.py is installed")
def test_a_build_of_another_source_is_never_used(monkeypatch):
    monkeypatch.delenv("SQUALL_PURE_PYTHON", raising=False)
    assert greedy.compiled_module(SOURCE)[0] is not None  # this very source: used
    module, why = greedy.compiled_module(SOURCE + b"\n# edited after the build\n")
    assert module is None
    assert "is of another greedy.py" in why


def test_no_build_means_the_python_greedy(monkeypatch):
    monkeypatch.setattr(greedy, "COMPILED_MODULE", "squall.rebalance._no_such_build")
    monkeypatch.delenv("SQUALL_PURE_PYTHON", raising=False)
    assert greedy.compiled_module(SOURCE) == (None, "python (no compiled build installed)")
