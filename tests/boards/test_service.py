"""``squall service install``: the unit's text, its quoting, and the refusals."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from squall.cli import main
from squall.cli.service import systemd_quote, unit_text

ME = pwd.getpwuid(os.getuid()).pw_name


def install(daemon: str, venv: Path, *options: str, user: str = ME) -> int:
    """``squall service install DAEMON --venv VENV --user USER OPTIONS``'s exit status."""
    return main(["service", "install", daemon, "--venv", str(venv), "--user", user, *options])


@pytest.fixture
def venv(tmp_path):
    """A stand-in virtual environment: what the command checks is bin/squall."""
    squall = tmp_path / "venv" / "bin" / "squall"
    squall.parent.mkdir(parents=True)
    squall.write_text("#!/bin/sh\n")
    squall.chmod(0o755)
    return tmp_path / "venv"


def test_supervisor_unit_text(venv):
    text = unit_text("supervisor", venv, "pi", "/home/pi", ["--cluster", "lab", "--slots", "2"])
    lines = text.splitlines()
    for line in (
        "After=network-online.target",
        "Wants=network-online.target",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "User=pi",
        "WorkingDirectory=/home/pi",
        f"ExecStart={venv}/bin/squall supervisor --cluster lab --slots 2",
        "WantedBy=multi-user.target",
    ):
        assert line in lines, line


@pytest.fixture
def keys(tmp_path_factory):
    from squall import security

    return security.generate(tmp_path_factory.mktemp("service-keys") / "k")


@pytest.fixture(autouse=True)
def no_keys_in_env(monkeypatch):
    monkeypatch.delenv("SQUALL_KEYS", raising=False)


def test_print_writes_nothing_and_shows_the_unit(venv, tmp_path, capsys, keys):
    unit_dir = tmp_path / "units"
    options = ["--unit-dir", str(unit_dir), "--args", "--cluster lab --http-port 0", "--keys", keys.folder, "--print"]
    assert install("nimbus", venv, *options) == 0
    out = capsys.readouterr().out
    assert f"ExecStart={venv}/bin/squall nimbus --cluster lab --http-port 0 --keys {keys.folder}" in out
    assert "Description=Squall Nimbus" in out
    assert not unit_dir.exists()


def test_install_writes_the_unit_with_the_keys_from_the_environment(venv, tmp_path, capsys, keys, monkeypatch):
    monkeypatch.setenv("SQUALL_KEYS", keys.folder)
    unit_dir = tmp_path / "units"
    assert install("supervisor", venv, "--unit-dir", str(unit_dir)) == 0
    unit = unit_dir / "squall-supervisor.service"
    assert f"ExecStart={venv}/bin/squall supervisor --keys {keys.folder}\n" in unit.read_text()
    assert "systemctl enable --now squall-supervisor.service" in capsys.readouterr().out
    if shutil.which("systemd-analyze"):  # systemd's own parser agrees with the file
        check = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stderr


def test_a_unit_without_keys_is_refused_unless_insecure(venv, tmp_path, capsys):
    """The finding: `squall service install nimbus` wrote a unit with no keys, and nothing warned."""
    unit_dir = tmp_path / "units"
    assert install("nimbus", venv, "--unit-dir", str(unit_dir)) == 2
    err = capsys.readouterr().err
    assert "without cluster keys" in err and "squall keygen" in err and "--insecure" in err
    assert not unit_dir.exists()
    assert install("nimbus", venv, "--args=--insecure", "--print") == 0
    assert f"ExecStart={venv}/bin/squall nimbus --insecure" in capsys.readouterr().out


def test_unloadable_keys_are_refused_naming_the_file(venv, tmp_path, capsys):
    assert install("supervisor", venv, "--keys", str(tmp_path / "nokeys"), "--print") == 2
    assert str(tmp_path / "nokeys" / "cluster.key_secret") in capsys.readouterr().err


def test_a_venv_without_squall_is_refused(tmp_path, capsys):
    assert install("supervisor", tmp_path / "nope", "--unit-dir", str(tmp_path / "units")) == 2
    err = capsys.readouterr().err
    assert "no virtual environment with Squall" in err and "python3 -m venv" in err
    assert not (tmp_path / "units").exists()


def test_an_unknown_user_is_refused(venv, capsys):
    assert install("supervisor", venv, "--print", user="no-such-user-x9") == 2
    assert "no user 'no-such-user-x9'" in capsys.readouterr().err


def test_unbalanced_quotes_in_args_are_refused(venv, capsys):
    assert install("supervisor", venv, "--args", '--id "x', "--print") == 2
    assert "--args" in capsys.readouterr().err


@pytest.mark.parametrize(
    "word, quoted",
    [
        pytest.param("--slots", "--slots", id="plain words stay bare"),
        pytest.param("lab 1", '"lab 1"', id="a space is quoted"),
        pytest.param("50%", '"50%%"', id="percent is not a systemd specifier"),
        pytest.param("$HOME", '"$$HOME"', id="dollar is not expanded"),
        pytest.param('say "hi"', '"say \\"hi\\""', id="inner quotes escaped"),
        pytest.param("", '""', id="an empty argument survives"),
    ],
)
def test_systemd_quote(word, quoted):
    assert systemd_quote(word) == quoted
