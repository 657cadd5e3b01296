"""Where a topology file's code lives: the project layouts ``squall local`` and ``squall
submit`` accept, which folders go on the import path, and which files go in the bundle.

Three layouts, recognised in this order:

* **streamparse** — ``config.json`` (with ``topology_specs``, default ``topologies/``) at the
  project root, topologies in that folder, components under ``src/``
  (``from bolts.wordcount import WordCountBolt``). Import roots: ``src/`` and the topologies
  folder; the topology file imports by its stem.
* **package** (heron's examples) — the topology file sits in a package (its folder has
  ``__init__.py``) and imports components by package path from the project root
  (``from examples.spout import WordSpout``). The root is the first folder above that has no
  ``__init__.py``; the file imports by its dotted path from there.
* **file** — anything else: the file's own folder is the import root (``from helpers
  import x`` beside the file).

Every layout flattens into one bundle whose top folder is an import root, so the worker puts
the unpacked bundle on ``sys.path`` and nothing else: the streamparse layout's ``src/``
contents and topology files land side by side at the top of the bundle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

STREAMPARSE = "streamparse"
PACKAGE = "package"
FILE = "file"

SKIP_DIRS = frozenset(
    {"__pycache__", ".git", ".venv", "venv", "virtualenvs", "node_modules", ".tox", ".mypy_cache", ".pytest_cache"}
)


class LayoutError(ValueError):
    """A project whose layout cannot be used; the message names the file at fault."""


@dataclass(frozen=True)
class ProjectLayout:
    """How one topology file's project is laid out."""

    kind: str
    topology_file: Path
    root: Path  # the project root (the file's folder for the file layout)
    module_name: str  # the name the topology file is imported under, here and on workers
    import_roots: tuple[Path, ...]  # folders put on sys.path, the first searched first

    def bundle_files(self) -> list[tuple[Path, str]]:
        """(file, name in the bundle) for every file the workers need; names are relative
        to an import root, so the bundle's top folder is the one import root workers need.
        Two files that would share a bundle name are refused with both paths."""
        if self.kind == STREAMPARSE:
            pairs = _package_files(self.topology_file.parent) + _all_python(self.root / "src")
        elif self.kind == PACKAGE:
            pairs = _package_files(self.root)
        else:
            pairs = _package_files(self.topology_file.parent)
        seen: dict[str, Path] = {}
        for path, name in pairs:
            if name in seen and seen[name] != path:
                raise LayoutError(f"{path} and {seen[name]} would both be {name!r} on the workers' import path")
            seen[name] = path
        return sorted(((p, n) for n, p in seen.items()), key=lambda pair: pair[1])


def detect_layout(topology_file: Path) -> ProjectLayout:
    """The layout of the project ``topology_file`` belongs to (see the module doc)."""
    path = topology_file.resolve()
    if not path.is_file():
        raise LayoutError(f"{path}: no such file")
    streamparse_root = _streamparse_root(path)
    if streamparse_root is not None:
        src = streamparse_root / "src"
        roots = (src, path.parent) if src.is_dir() else (path.parent,)
        return ProjectLayout(STREAMPARSE, path, streamparse_root, path.stem, roots)
    if (path.parent / "__init__.py").is_file():
        root = path.parent
        parts = [path.stem]
        while (root / "__init__.py").is_file():
            parts.insert(0, root.name)
            root = root.parent
        return ProjectLayout(PACKAGE, path, root, ".".join(parts), (root,))
    return ProjectLayout(FILE, path, path.parent, path.stem, (path.parent,))


def _streamparse_root(path: Path) -> Path | None:
    """The project root when ``path`` is in the topology folder a ``config.json`` names."""
    root = path.parent.parent
    config_file = root / "config.json"
    if not config_file.is_file():
        return None
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise LayoutError(f"{config_file}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise LayoutError(f"{config_file}: expected a JSON object")
    specs = str(config.get("topology_specs", "topologies/")).strip("/")
    if (root / specs).resolve() != path.parent:
        return None
    return root


def _package_files(folder: Path) -> list[tuple[Path, str]]:
    """``.py`` files in ``folder`` and in every package (folder with ``__init__.py``) below."""
    return [(p, str(p.relative_to(folder))) for p in _walk(folder, packages_only=True)]


def _all_python(folder: Path) -> list[tuple[Path, str]]:
    """Every ``.py`` file below ``folder``: streamparse's ``src/`` may hold namespace packages."""
    if not folder.is_dir():
        return []
    return [(p, str(p.relative_to(folder))) for p in _walk(folder, packages_only=False)]


def _walk(folder: Path, packages_only: bool) -> list[Path]:
    files: list[Path] = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith(".") or child.name in SKIP_DIRS:
            continue
        if child.is_file() and child.suffix == ".py":
            files.append(child)
        elif child.is_dir() and (not packages_only or (child / "__init__.py").is_file()):
            files.extend(_walk(child, packages_only))
    return files
