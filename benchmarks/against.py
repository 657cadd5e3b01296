"""Run a benchmark script against another revision of Squall, for "before and after"
figures measured in the same run (the machine's load changes between runs).

    python benchmarks/against.py REV benchmarks/engine_figures.py [script args...]

Exports ``REV`` with ``git archive`` into a temporary folder, lays it out as the ``squall``
import namespace (the same mapping as ``[tool.setuptools.package-dir]``), and runs the given
script (from this checkout) with that folder first on ``PYTHONPATH``, so the script measures
the old code. It runs in the temporary folder (so this checkout's folders are not importable
from the working directory). The script must use only APIs both revisions have.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

# An editable install of this checkout puts its own finder ahead of PYTHONPATH; drop it.
BOOT = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]; "
)
SUBPACKAGES = {
    "nimbus": "nimbus",
    "supervisor": "supervisor",
    "topology": "topology",
    "rebalance": "rebalance",
    "experiments": "experiments",
}


def export(rev: str, into: Path) -> Path:
    """``rev``'s tree under ``into/src``; returns the folder to put on PYTHONPATH."""
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev], check=True, capture_output=True).stdout
    src = into / "src"
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        try:
            tar.extractall(src, filter="data")
        except TypeError:  # Python before 3.11.4 has no extraction filters; git's own archive
            tar.extractall(src)
    site = into / "site"
    (site).mkdir()
    (site / "squall").symlink_to(src / "squall")
    # squall.nimbus etc. live in top-level folders; link them inside the exported squall/.
    for name, folder in SUBPACKAGES.items():
        if (src / folder).is_dir() and not (src / "squall" / name).exists():
            (src / "squall" / name).symlink_to(src / folder)
    return site


def script_output(site: Path, script: str, args: list[str], shown_module: str) -> str:
    """``script``'s standard output, run with ``args`` against the tree in ``site`` (as
    :func:`export` lays it out); its first line names the file ``shown_module`` was imported
    from, so a compiled module can be told from the interpreted one."""
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = (
        BOOT
        + f"import {shown_module} as m; print('# {shown_module.rsplit('.', 1)[-1]}:', m.__file__); "
        + f"sys.argv = {[script, *args]!r}; import runpy; runpy.run_path({script!r}, run_name='__main__')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=site.parent, capture_output=True, text=True, check=True
    )
    return out.stdout


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    rev, script, *rest = argv
    script = str(Path(script).resolve())
    with tempfile.TemporaryDirectory(prefix="squall-against-") as tmp:
        site = export(rev, Path(tmp))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
        check = subprocess.run(
            [sys.executable, "-c", BOOT + "import squall.supervisor.runtime.engine as e; print(e.__file__)"],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        if str(site) not in check.stdout and tmp not in check.stdout:
            print(
                f"could not import the exported {rev}: {check.stdout.strip()} {check.stderr.strip()}", file=sys.stderr
            )
            return 1
        print(f"# {script} at {rev}", flush=True)
        run = BOOT + f"sys.argv = {[script, *rest]!r}; import runpy; runpy.run_path({script!r}, run_name='__main__')"
        return subprocess.run([sys.executable, "-c", run], env=env, cwd=tmp).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
