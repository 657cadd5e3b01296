"""Count the instructions a benchmark script runs in a child process, under
``valgrind --tool=cachegrind``: a figure that does not move with the machine's load.

The child is the calling script itself, run again with ``child_args`` (its own hidden
``--child`` option); ``count`` returns the child's instruction total and its standard output.
Under ``against.py`` the parent dropped the editable install's finder so that the older
revision on PYTHONPATH is imported, and the child does the same.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

DROP_EDITABLE = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]; "
)


def available() -> bool:
    """Whether valgrind is installed (the scripts say so and exit 2 when it is not)."""
    return shutil.which("valgrind") is not None


def count(script: str | Path, child_args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """(instructions, standard output) of ``python script *child_args`` under cachegrind,
    with ``env`` added to this process's environment."""
    editable = any(getattr(f, "__module__", "").startswith("__editable__") for f in sys.meta_path)
    script = str(Path(script))
    code = ("" if editable else DROP_EDITABLE) + (
        f"import runpy, sys; sys.argv = [{script!r}, *{child_args!r}]; runpy.run_path({script!r}, run_name='__main__')"
    )
    out = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    match = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output: {out.stderr[-500:]}")
    return int(match.group(1).replace(",", "")), out.stdout.strip()
