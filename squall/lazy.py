"""Names a package re-exports, resolved on first use (PEP 562), so importing the package, or
one of its submodules, loads none of the modules behind them.

Used by ``squall`` (``import squall.rebalance`` must not pay for the topology DSL) and by
``squall.topology`` (the schedulers import ``squall.topology.order`` alone).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, names: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``names`` maps each exported name to the
    module defining it; the first access imports that module and caches the value in the
    package's ``namespace`` (its ``globals()``), so later accesses cost nothing."""

    def __getattr__(name: str) -> Any:
        module_name = names.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name), name)
        namespace[name] = value
        return value

    return __getattr__
