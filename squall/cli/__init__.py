"""The ``squall`` command line.

Verbs live in modules under ``squall.cli`` (``VERBS`` maps each verb to its module; one
module may hold several, as ``manage`` holds Storm's management verbs). A module exposes
``add_parser(subparsers)``, which registers its verbs with their options and sets each
one's ``func(args) -> int``, the work returning the process exit code.

Exit codes follow one rule across verbs: 0 success; 1 a runtime failure (Nimbus refused the
request, with its reason, or could not be reached; a missing optional dependency); 2 bad
input found before anything ran (a malformed file, an invalid option), raised as
:class:`UsageError` and printed on stderr naming the thing at fault.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Verb -> module, in the order ``squall --help`` lists them. A module may register several
# verbs (it is imported once). Verb modules import their heavy dependencies inside run(), so
# ``squall schedule`` does not pay for zmq and ``squall local`` does not pay for networkx.
VERBS: dict[str, str] = {
    "demo": "squall.cli.demo",
    "local": "squall.cli.local",
    "quickstart": "squall.cli.quickstart",
    "cluster": "squall.cli.cluster",
    "nimbus": "squall.cli.nimbus",
    "supervisor": "squall.cli.supervisor",
    "service": "squall.cli.service",
    "schedule": "squall.cli.schedule",
    "submit": "squall.cli.submit",
    "keygen": "squall.cli.keygen",
    "list": "squall.cli.manage",
    "nimbus-status": "squall.cli.manage",
    "kill": "squall.cli.manage",
    "activate": "squall.cli.manage",
    "deactivate": "squall.cli.manage",
    "rebalance": "squall.cli.manage",
    "assignment": "squall.cli.manage",
    "events": "squall.cli.events",
    "stats": "squall.cli.events",
    "testbed": "squall.cli.testbed",
    "experiment": "squall.cli.experiment",
    "chaos": "squall.cli.chaos",
}


class UsageError(Exception):
    """Bad input from the user: printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="squall",
        description="Squall: a Storm-like stream processor for clusters of small boards.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for module_name in dict.fromkeys(VERBS.values()):
        importlib.import_module(module_name).add_parser(sub)
    return parser


def split_script_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split at the first ``--``: ``squall``'s own arguments, then those for the user's script
    (``squall local FILE --seconds 5 -- wc`` gives the script ``sys.argv[1:] == ["wc"]``)."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    own, script_args = split_script_args(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(own)
    if script_args and not getattr(args, "takes_script_args", False):
        parser.error(f"squall {args.verb} takes no arguments after --")
    args.script_args = script_args
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"squall {args.verb}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
