"""The optional compiled pair greedy (everything else about the package is in pyproject.toml).

``squall.rebalance.greedy`` (``rebalance/greedy.py``) is compiled by Cython, unchanged, into
the private module ``squall.rebalance._greedy_compiled``, which records the SHA-256 of the
source it was built from. ``greedy.py`` uses it only when that hash is its own (an edited
``greedy.py`` is never shadowed by a stale build) and ``SQUALL_PURE_PYTHON=1`` is not set.

The build never fails an install: with ``SQUALL_PURE_PYTHON=1`` in the environment, without
Cython or without a working C compiler (a board's stock image), the package installs as pure
Python, which places exactly the same (the schedulers run only on Nimbus anyway).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCE = Path("rebalance") / "greedy.py"
MODULE = "squall.rebalance._greedy_compiled"


def source_copy(into: Path) -> Path:
    """``greedy.py`` byte for byte, plus the line that records its hash, as the module's
    source: Cython names the module after the extension, and the hash check reads it."""
    text = SOURCE.read_bytes()
    digest = hashlib.sha256(text).hexdigest()
    into.mkdir(parents=True, exist_ok=True)
    copy = into / "_greedy_compiled.py"
    tail = f'\n# Added by setup.py: the hash of the greedy.py this was compiled from.\nSOURCE_SHA256 = "{digest}"\n'
    copy.write_bytes(text + tail.encode())
    return copy


class OptionalBuildExt(build_ext):
    """build_ext that skips the compiled module whenever it cannot (or must not) be built."""

    def run(self) -> None:
        if os.environ.get("SQUALL_PURE_PYTHON") == "1":
            print("squall: SQUALL_PURE_PYTHON=1, the pair greedy stays pure Python")
            return
        try:
            from Cython.Build import cythonize
        except ImportError:
            print("squall: Cython is not installed, the pair greedy stays pure Python")
            return
        copy = source_copy(Path(self.build_temp) / "squall-compiled")
        try:
            (translated,) = cythonize(
                [Extension(MODULE, [str(copy)])],
                # Unchanged source: annotations are for mypy, not C types (a ``float | None``
                # argument must stay a Python object).
                compiler_directives={"language_level": 3, "annotation_typing": False},
                build_dir=str(Path(self.build_temp) / "squall-compiled"),
                quiet=True,
            )
        except Exception as exc:  # a Cython that cannot compile this source: pure Python
            print(f"squall: Cython failed ({exc}), the pair greedy stays pure Python")
            return
        # The C file in place of the .py: the extension object itself is kept, as
        # setuptools registered it (its full name, where an in-place build copies it).
        for ext in self.extensions:
            if ext.name == MODULE:
                ext.sources = translated.sources
        super().run()


setup(
    # optional=True: a compile error (no compiler, no Python headers) is a warning, not a failure.
    ext_modules=[Extension(MODULE, [str(SOURCE)], optional=True)],
    cmdclass={"build_ext": OptionalBuildExt},
)
