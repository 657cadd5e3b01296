"""Type-check the ``squall`` packages with mypy, as they install.

    python scripts/typecheck.py [MYPY ARGS]

The folders install into one namespace through ``[tool.setuptools.package-dir]``
(``nimbus/`` is ``squall.nimbus``, ...), which mypy cannot follow: it finds modules by path,
and an editable install maps them with an import hook. So this builds, in a temporary folder,
a ``squall/`` made of symbolic links laid out as the installed package is (the mapping read
from pyproject.toml, so it stays in step), runs mypy on it with the repository's settings
(``[tool.mypy]``) and prints its report with the repository's paths. Exit status: mypy's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOP = "squall"


def package_dirs() -> dict[str, str]:
    """Subpackage name (``nimbus``) -> its folder in the repository, for every
    ``squall.<name>`` the package-dir table maps somewhere other than ``squall/<name>``."""
    table = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    out = {}
    for package, folder in table.items():
        head, _, name = package.partition(".")
        if head != TOP or not name:
            continue
        if "." in name:
            raise SystemExit(f"typecheck: nested mapping {package!r} is not supported; extend scripts/typecheck.py")
        out[name] = folder
    return out


def build_view(root: Path, mapped: dict[str, str]) -> Path:
    """``root/squall``: links to the files of ``squall/`` and to each mapped folder."""
    view = root / TOP
    view.mkdir()
    for entry in (REPO / TOP).iterdir():
        if entry.name not in mapped and entry.name != "__pycache__":
            (view / entry.name).symlink_to(entry)
    for name, folder in mapped.items():
        (view / name).symlink_to(REPO / folder, target_is_directory=True)
    return view


def to_repo_paths(report: str, mapped: dict[str, str]) -> str:
    """``squall/nimbus/state.py:12: error`` -> ``nimbus/state.py:12: error``."""
    pattern = re.compile(rf"^{TOP}/({'|'.join(map(re.escape, mapped))})/", re.M)
    return pattern.sub(lambda m: f"{mapped[m.group(1)]}/", report)


def main(argv: list[str]) -> int:
    mapped = package_dirs()
    with tempfile.TemporaryDirectory(prefix="squall-typecheck-") as tmp:
        build_view(Path(tmp), mapped)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "mypy",
                "--config-file",
                str(REPO / "pyproject.toml"),
                "--cache-dir",
                str(REPO / ".mypy_cache"),
                "-p",
                TOP,
                *argv,
            ],
            cwd=tmp,
            capture_output=True,
            text=True,
            env={**os.environ, "MYPYPATH": ""},
        )
    sys.stdout.write(to_repo_paths(proc.stdout, mapped))
    sys.stderr.write(proc.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
