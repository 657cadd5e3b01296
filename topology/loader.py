"""Finding a topology in a user's file: ``app.py`` or ``app.py:WordCount``.

Errors are ``LoadError`` with a message meant for the terminal (the CLI exits 2 on them):
a missing file, a file that fails to import (with the import error), a file defining no
topology, several topologies without one named, or a named class that is not a topology.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from squall.topology.dsl import Topology
from squall.topology.errors import TopologyError


class LoadError(Exception):
    """The file or class the user named does not give one valid topology."""


def import_file(path: Path) -> object:
    """Import a Python file as a module named after its stem, its folder on sys.path so the
    user's sibling modules import too; class refs in the spec then resolve by that name."""
    path = path.resolve()
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except TopologyError as exc:
        sys.modules.pop(name, None)
        raise LoadError(f"{path}: invalid topology: {exc}") from None
    except Exception as exc:  # the user's module failed to import: show why
        sys.modules.pop(name, None)
        raise LoadError(f"{path}: import failed: {type(exc).__name__}: {exc}") from None
    return module


def load_topology(target: str) -> type[Topology]:
    """``FILE[:TopologyClass]`` -> the Topology subclass."""
    file_part, _, class_name = target.partition(":")
    if file_part.endswith(".py") is False and ":" not in target and Path(target).suffix != ".py":
        raise LoadError(f"{target}: expected FILE.py or FILE.py:TopologyClass")
    module = import_file(Path(file_part))
    found = {
        name: obj
        for name, obj in vars(module).items()
        if isinstance(obj, type) and issubclass(obj, Topology) and obj is not Topology
        and _defined_here(obj, module) and hasattr(obj, "spec") and obj.spec.components
    }
    if class_name:
        obj = getattr(module, class_name, None)
        if obj is None:
            raise LoadError(f"{file_part}: no class {class_name!r} (topologies here: {', '.join(sorted(found)) or 'none'})")
        if not (isinstance(obj, type) and issubclass(obj, Topology)):
            raise LoadError(f"{file_part}: {class_name!r} is not a Topology subclass")
        return obj
    if not found:
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
