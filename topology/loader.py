"""Finding a topology in a user's file: ``app.py`` or ``app.py:WordCount``.

Errors are ``LoadError`` with a message meant for the terminal (the CLI exits 2 on them):
a missing file, a file that fails to import (with the import error), a file defining no
topology, several topologies without one named, or a named class that is not a topology.

The file is imported as its project layout says (``squall.topology.project``): the layout's
import roots go on ``sys.path`` and the file gets the module name workers will import its
classes under. A script that builds its topology at run time and hands it over — heronpy's
``TopologyBuilder(...).build_and_submit()`` under ``if __name__ == "__main__":`` — is run
as ``__main__`` with the given arguments as ``sys.argv[1:]``, and the topology it hands over
(``hand_over``) is the one loaded. Only a file that mentions ``build_and_submit`` is run so,
so ``squall local`` never starts an unrelated script's main.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import runpy
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from squall.topology.dsl import Topology
from squall.topology.errors import TopologyError
from squall.topology.project import LayoutError, ProjectLayout, detect_layout

SCRIPT_MARKER = "build_and_submit"
HANDED_OVER_ATTR = "__squall_handed_over__"

# Import roots this loader put on sys.path for projects loaded in this process (see
# _forget_shadowed); folders that were on the path already are never among them.
_project_roots: set[Path] = set()

# The topologies handed over while a script runs as __main__; None when nobody is listening.
_handed_over: list[type[Topology]] | None = None


class LoadError(Exception):
    """The file or class the user named does not give one valid topology."""


def hand_over(topology: type[Topology]) -> None:
    """Give a topology built at run time to the ``squall`` command running the script."""
    if _handed_over is None:
        raise RuntimeError(
            f"topology {topology.spec.name!r} was built outside Squall's command line: run this file "
            "with `squall local FILE -- ARGS` or `squall submit FILE -- ARGS`"
        )
    _handed_over.append(topology)


@contextmanager
def _receiving(argv: Sequence[str], path: Path) -> Iterator[list[type[Topology]]]:
    global _handed_over
    saved_argv, saved = sys.argv, _handed_over
    received: list[type[Topology]] = []
    sys.argv, _handed_over = [str(path), *argv], received
    try:
        yield received
    finally:
        sys.argv, _handed_over = saved_argv, saved


def import_file(path: Path, argv: Sequence[str] = ()) -> object:
    """Import a Python file under the module name its layout gives it, the layout's import
    roots on sys.path so the user's other modules import too; class refs in the spec then
    resolve by that name on workers. ``argv`` is ``sys.argv[1:]`` while it imports."""
    layout = _layout(path)
    _forget_shadowed(layout.import_roots)
    for root in reversed(layout.import_roots):
        folder = str(root)
        if folder in sys.path:
            sys.path.remove(folder)
        elif root.resolve() not in _project_roots:
            _project_roots.add(root.resolve())  # only folders this loader put on the path
        sys.path.insert(0, folder)
    name = layout.module_name
    with _receiving(argv, layout.topology_file) as received:
        try:
            module = _import(layout)
            # A script that builds and hands over at import time, with no __main__ guard.
            setattr(module, HANDED_OVER_ATTR, list(received))
            return module
        except TopologyError as exc:
            sys.modules.pop(name, None)
            raise LoadError(f"{layout.topology_file}: invalid topology: {exc}") from None
        except Exception as exc:  # the user's module failed to import: show why
            sys.modules.pop(name, None)
            raise LoadError(f"{layout.topology_file}: import failed: {type(exc).__name__}: {exc}") from None


def _forget_shadowed(roots: Sequence[Path]) -> None:
    """Drop from ``sys.modules`` the modules an earlier project loaded in this process from its
    own import roots under a name this project also has at the top of its roots (two
    streamparse projects both have a ``bolts`` package), and the earlier roots from
    ``sys.path``, so this project's code is the one imported. Modules from anywhere else (the
    standard library, installed packages) stay; classes already loaded stay usable."""
    resolved = [r.resolve() for r in roots]
    earlier = [r for r in _project_roots if r not in resolved]
    if not earlier:
        return
    # Their roots leave the path too: a regular package there would win over a namespace
    # package of the same name here, wherever it sits on the path.
    sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() not in earlier]
    names = {
        p.stem
        for r in resolved
        if r.is_dir()
        for p in r.iterdir()
        if (p.suffix == ".py" and p.is_file()) or (p.is_dir() and not p.name.startswith("."))
    }
    for name in list(sys.modules):
        if name.partition(".")[0] not in names:
            continue
        module = sys.modules[name]
        origin = getattr(module, "__file__", None)
        paths = [Path(origin)] if origin else [Path(p) for p in getattr(module, "__path__", [])]
        homes = {root for p in paths for root in earlier if root in p.resolve().parents}
        if homes and not any(root in p.resolve().parents for p in paths for root in resolved):
            del sys.modules[name]


def _layout(path: Path) -> ProjectLayout:
    try:
        return detect_layout(path)
    except LayoutError as exc:
        raise LoadError(str(exc)) from None


def _import(layout: ProjectLayout) -> object:
    name = layout.module_name
    if layout.kind == "package":
        sys.modules.pop(name, None)  # a fresh import, as for a file
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(name, layout.topology_file)
    if spec is None or spec.loader is None:
        raise LoadError(f"{layout.topology_file}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _run_script(layout: ProjectLayout, module: object, argv: Sequence[str]) -> type[Topology] | None:
    """Run the file as ``__main__``; the topology it hands over, its classes named by the
    module workers import (``module``), or None when it hands over none."""
    path = layout.topology_file
    with _receiving(argv, path) as received:
        try:
            runpy.run_path(str(path), run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise LoadError(f"{path}: the script exited with {exc.code!r} (arguments: {list(argv)})") from None
        except TopologyError as exc:
            raise LoadError(f"{path}: invalid topology: {exc}") from None
        except Exception as exc:
            raise LoadError(f"{path}: running the script failed: {type(exc).__name__}: {exc}") from None
    if not received:
        return None
    if len(received) > 1:
        names = ", ".join(t.spec.name for t in received)
        raise LoadError(f"{path}: the script handed over several topologies ({names}); hand over one")
    return _named_for_workers(received[0], module, layout)


def _named_for_workers(topology: type[Topology], module: object, layout: ProjectLayout) -> type[Topology]:
    """Point class refs of components defined in the script (``__main__:X``) at the module
    name workers import, where the same classes are defined at module level."""
    components = []
    classes = dict(topology.classes)
    for comp in topology.spec.components:
        module_name, _, qualname = comp.class_ref.partition(":")
        if module_name == "__main__":
            cls = _resolve_in(module, qualname)
            if cls is None:
                raise LoadError(
                    f"{layout.topology_file}: component {comp.name!r} uses class {qualname!r} defined inside "
                    "`if __name__ == '__main__':`; define it at module level so workers can import it"
                )
            comp = dataclasses.replace(comp, class_ref=f"{layout.module_name}:{qualname}")
            classes[comp.name] = cls
        components.append(comp)
    topology.spec = dataclasses.replace(topology.spec, components=tuple(components))
    topology.classes = classes
    return topology


def _resolve_in(module: object, qualname: str) -> type | None:
    obj: object = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) else None


def load_topology(target: str, argv: Sequence[str] = ()) -> type[Topology]:
    """``FILE[:TopologyClass]`` -> the Topology subclass; ``argv`` is what a script that
    builds its topology at run time gets as ``sys.argv[1:]``."""
    file_part, _, class_name = target.partition(":")
    if file_part.endswith(".py") is False and ":" not in target and Path(target).suffix != ".py":
        raise LoadError(f"{target}: expected FILE.py or FILE.py:TopologyClass")
    module = import_file(Path(file_part), argv)
    found = {
        name: obj
        for name, obj in vars(module).items()
        if isinstance(obj, type)
        and issubclass(obj, Topology)
        and obj is not Topology
        and _defined_here(obj, module)
        and hasattr(obj, "spec")
        and obj.spec.components
    }
    if class_name:
        obj = getattr(module, class_name, None)
        if obj is None:
            raise LoadError(
                f"{file_part}: no class {class_name!r} (topologies here: {', '.join(sorted(found)) or 'none'})"
            )
        if not (isinstance(obj, type) and issubclass(obj, Topology)):
            raise LoadError(f"{file_part}: {class_name!r} is not a Topology subclass")
        return obj
    if not found:
        handed_over = getattr(module, HANDED_OVER_ATTR, [])
        if len(handed_over) == 1:
            return handed_over[0]
        layout = _layout(Path(file_part))
        if SCRIPT_MARKER in layout.topology_file.read_text(errors="replace"):
            built = _run_script(layout, module, argv)
            if built is not None:
                return built
            raise LoadError(f"{file_part}: the script ran but handed over no topology (arguments: {list(argv)})")
        raise LoadError(f"{file_part}: defines no topology (a subclass of squall.Topology)")
    if len(found) > 1:
        raise LoadError(
            f"{file_part}: defines several topologies ({', '.join(sorted(found))}); name one as {file_part}:NAME"
        )
    return next(iter(found.values()))


def _defined_here(cls: type, module: object) -> bool:
    """True for a class written in ``module`` or built there by a factory (for example
    ``Chain = chain_topology(...)``, whose ``__module__`` is the factory's); False for a
    topology merely imported from the module where it is reachable under its own name."""
    if cls.__module__ == getattr(module, "__name__", None):
        return True
    home = sys.modules.get(cls.__module__)
    return getattr(home, cls.__qualname__, None) is not cls


def resolve_class(class_ref: str) -> type:
    """``module:Qualified.Name`` -> the class (the worker's view of a spec's components)."""
    module_name, _, qualname = class_ref.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise TypeError(f"{class_ref} is not a class")
    return obj
