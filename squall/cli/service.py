"""``squall service install supervisor|nimbus [--keys DIR] [--venv PATH] [--user U] [--args "..."] [--print]``

Writes a systemd unit, so a board starts its supervisor (or Nimbus) at boot and again after
a crash or a power cut: ``Restart=on-failure`` after ``network-online.target``, running
``VENV/bin/squall ROLE ARGS`` as ``USER``. It goes to ``/etc/systemd/system/squall-ROLE.service``
(``--unit-dir`` elsewhere), or to stdout with ``--print``.

Guarantees: a unit is only written for a virtual environment that holds ``bin/squall`` and
for a user that exists (else exit 2, saying what is wrong and how to fix it); the arguments
are quoted for systemd, so what ``--args`` says is what the service runs. Exit code 2 (bad
input) is excluded from restarts: a board refusing to start (no slot, a bad option) does not
loop.

A unit carries the cluster keys: ``--keys DIR`` (default ``$SQUALL_KEYS``) is checked and
written into ``ExecStart`` as an absolute path. A unit without keys is refused (exit 2)
unless ``--args`` says ``--insecure``: a daemon started at boot listens on the network, and
without keys anyone there could run code on the board.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shlex
import sys
from pathlib import Path

from squall.cli import UsageError

ROLES = ("supervisor", "nimbus")
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
DESCRIPTIONS = {
    "supervisor": "Squall supervisor (the board daemon that runs workers)",
    "nimbus": "Squall Nimbus (the master that places topologies)",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("service", help="install a systemd unit for a supervisor or Nimbus")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    inst = actions.add_parser("install", help="write squall-ROLE.service (or print it)")
    inst.add_argument("role", choices=ROLES)
    inst.add_argument(
        "--venv", type=Path, help="virtual environment holding bin/squall (default: the one running this command)"
    )
    inst.add_argument("--user", help="user the service runs as (default: $SUDO_USER, else the current user)")
    inst.add_argument(
        "--args",
        default="",
        dest="role_args",
        help='arguments of `squall ROLE`, quoted as one string, e.g. --args "--cluster lab --slots 2"',
    )
    inst.add_argument(
        "--keys", metavar="DIR", help="cluster keys folder the service uses (default $SQUALL_KEYS; see `squall keygen`)"
    )
    inst.add_argument(
        "--unit-dir", type=Path, default=DEFAULT_UNIT_DIR, help=f"where the unit goes (default {DEFAULT_UNIT_DIR})"
    )
    inst.add_argument("--print", action="store_true", dest="print_only", help="print the unit instead of writing it")
    p.set_defaults(func=run)


def default_venv() -> Path | None:
    """The virtual environment of this interpreter, if it runs in one."""
    return Path(sys.prefix) if sys.prefix != sys.base_prefix else None


def default_user() -> str:
    return os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name


def systemd_quote(word: str) -> str:
    """One ExecStart word: double-quoted when needed, with systemd's escapes and % doubled."""
    if word and all(c.isalnum() or c in "-_./=:,@+" for c in word):
        return word.replace("%", "%%")
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def unit_text(role: str, venv: Path, user: str, home: str, role_args: list[str]) -> str:
    """The unit file for ``role``; a pure function of its inputs."""
    command = " ".join(systemd_quote(w) for w in [str(venv / "bin" / "squall"), role, *role_args])
    return "\n".join(
        [
            "# Written by `squall service install`; rewrite it with the same command.",
            "[Unit]",
            f"Description={DESCRIPTIONS[role]}",
            # Boards often join Wi-Fi late: wait for the network, or discovery finds nothing.
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=simple",
            f"User={user}",
            f"WorkingDirectory={home}",
            f"Environment=HOME={home}",
            "Environment=PYTHONUNBUFFERED=1",
            f"ExecStart={command}",
            "Restart=on-failure",
            "RestartSec=5",
            # Exit 2 is bad input (a board without a slot, a wrong option): restarting cannot help.
            "RestartPreventExitStatus=2",
            # SIGTERM to squall only: it stops its workers itself, then systemd kills any left over.
            "KillMode=mixed",
            "TimeoutStopSec=20",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def with_keys(keys_dir: str | None, role_args: list[str]) -> list[str]:
    """``role_args`` with ``--keys ABSOLUTE_DIR`` (checked loadable); refuses a keyless unit
    unless the arguments say ``--insecure``."""
    from squall.security import INSECURE_FLAG, KEYS_ENV, KeyError_, load

    given = [a for a in role_args if a == "--keys" or a.startswith("--keys=")]
    folder = keys_dir or os.environ.get(KEYS_ENV)
    if given:
        if keys_dir:
            raise UsageError("give the keys once: --keys, or --keys inside --args, not both")
        return role_args
    if folder:
        try:
            keys = load(Path(folder).expanduser())
        except KeyError_ as exc:
            raise UsageError(str(exc)) from None
        return [*role_args, "--keys", keys.folder]
    if INSECURE_FLAG in role_args:
        return role_args
    raise UsageError(
        "a service without cluster keys would let anyone on the network run code on this board; "
        "give --keys DIR (make them once with `squall keygen --out DIR`, copy them to every board), "
        f'or --args="{INSECURE_FLAG} ..." to accept the risk'
    )


def run(args: argparse.Namespace) -> int:
    venv = args.venv or default_venv()
    if venv is None:
        raise UsageError("this squall does not run in a virtual environment; give --venv PATH")
    venv = venv.expanduser().absolute()
    if not (venv / "bin" / "squall").is_file() or not os.access(venv / "bin" / "squall", os.X_OK):
        raise UsageError(
            f"no virtual environment with Squall at {venv} (missing {venv / 'bin' / 'squall'}): "
            f"create it with `python3 -m venv {venv} && {venv}/bin/pip install squall`"
        )
    user = args.user or default_user()
    try:
        home = pwd.getpwnam(user).pw_dir
    except KeyError:
        raise UsageError(f"no user {user!r} on this machine (create it, or give --user)") from None
    if "\n" in args.role_args:
        raise UsageError("--args must be on one line")
    try:
        role_args = shlex.split(args.role_args)
    except ValueError as exc:
        raise UsageError(f"--args {args.role_args!r}: {exc}") from None
    role_args = with_keys(args.keys, role_args)
    text = unit_text(args.role, venv, user, home, role_args)
    if args.print_only:
        sys.stdout.write(text)
        return 0
    name = f"squall-{args.role}.service"
    path = args.unit_dir / name
    try:
        args.unit_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        print(f"squall service: cannot write {path}: {exc} (run it as root, or use --print)", file=sys.stderr)
        return 1
    print(
        f"wrote {path}\nstart it now and at every boot with:\n"
        f"  sudo systemctl daemon-reload && sudo systemctl enable --now {name}\n"
        f"follow its log with:\n  journalctl -u {name} -f"
    )
    return 0
