"""Optional dependencies: which extra provides a module, and a clear message when it is missing.

A board that only runs a supervisor installs plain ``squall``; Nimbus, the schedulers and
``squall demo`` need ``squall[nimbus]`` (numpy, networkx), and the ``partition`` scheduler
needs ``squall[partition]`` (pymetis). Verbs call :func:`missing` before importing them, so
a board gets one line saying what to install instead of a traceback.
"""

from __future__ import annotations

import importlib.util

EXTRA_OF = {"numpy": "nimbus", "networkx": "nimbus", "pysyncobj": "nimbus", "pymetis": "partition"}


def missing(*modules: str) -> str | None:
    """None when every module can be imported, else what to install, in one sentence."""
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    extras = ",".join(dict.fromkeys(EXTRA_OF.get(m, m) for m in absent))
    return (
        f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed: "
        f"pip install 'squall[{extras}]' (a board that only runs a supervisor does not need it)"
    )
