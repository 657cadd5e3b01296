"""Cluster keys: ZeroMQ CURVE encryption and authentication of every link.

The model is one **cluster key pair**, shared by every member (Nimbus, supervisors, workers,
and the users allowed to run ``squall submit``): ``squall keygen --out DIR`` writes it once;
each daemon loads it with ``--keys DIR`` (or ``$SQUALL_KEYS``). Every socket that binds is a
CURVE server with the cluster secret; every socket that connects is a CURVE client that
presents the cluster public key and proves it holds the secret. A ZAP handler on each server
accepts only clients presenting the cluster public key, so a peer without the secret cannot
complete a handshake: it cannot register, submit, heartbeat or inject tuples, and cannot read
the traffic.

The same secret keys the HMAC that signs discovery replies (``sign``) and derives the
REST API token (``api_token``), so one folder configures all three.

What this does not protect against (the threat model, in docs/security.md): a board that is
itself compromised leaks the shared secret (rotate it by generating a new pair and
restarting the cluster); traffic analysis (who talks to whom, how much); denial of service
by flooding a port.

Protected by default (``protection_refusal``): without keys a daemon binds loopback only and
refuses any other address unless started with ``--insecure`` — the way Redis's protected
mode does it — because an unauthenticated control port runs any submitted code on every
board.

Guarantees: ``secure_server``/``secure_client`` do nothing without keys, so callers need no
branch; a context that got a server socket has one ZAP thread, which ``release(ctx)`` stops —
call it before ``ctx.term()``, which would otherwise wait for that thread's socket forever.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

KEY_BASENAME = "cluster"
KEYS_ENV = "SQUALL_KEYS"  # the keys folder when --keys is not given


class KeyError_(ValueError):
    """Keys that cannot be loaded; the message names the file."""


@dataclass(frozen=True)
class ClusterKeys:
    public: bytes  # z85-encoded, 40 bytes
    secret: bytes
    folder: str

    def api_token(self) -> str:
        """The token HTTP clients send as ``X-Squall-Key`` (derived, so the secret never
        travels in a header)."""
        return hmac.new(self.secret, b"squall-http-api", hashlib.sha256).hexdigest()

    def sign(self, payload: bytes) -> str:
        """An HMAC of ``payload`` (discovery replies), checkable by any key holder."""
        return hmac.new(self.secret, payload, hashlib.sha256).hexdigest()

    def verify(self, payload: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(payload), signature)


def generate(folder: Path) -> ClusterKeys:
    """Write a new cluster key pair into ``folder`` (secret file mode 0600)."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".key", ".key_secret"):
        if (folder / f"{KEY_BASENAME}{suffix}").exists():
            raise KeyError_(f"{folder / (KEY_BASENAME + suffix)} exists; remove it to make a new pair")
    zmq.auth.create_certificates(str(folder), KEY_BASENAME)
    os.chmod(folder / f"{KEY_BASENAME}.key_secret", 0o600)
    return load(folder)


def load(folder: str | Path) -> ClusterKeys:
    secret_file = Path(folder) / f"{KEY_BASENAME}.key_secret"
    if not secret_file.is_file():
        raise KeyError_(f"{secret_file}: no cluster secret key (make one with `squall keygen --out {folder}`)")
    try:
        public, secret = zmq.auth.load_certificate(str(secret_file))
    except (OSError, ValueError) as exc:
        raise KeyError_(f"{secret_file}: not a key file ({exc})") from None
    if not secret:
        raise KeyError_(f"{secret_file}: holds no secret key")
    return ClusterKeys(public=public, secret=secret, folder=str(Path(folder).expanduser().resolve()))


def from_env(explicit: str | None = None) -> ClusterKeys | None:
    """Keys from ``--keys`` or ``$SQUALL_KEYS``; None when neither is set (no encryption)."""
    folder = explicit or os.environ.get(KEYS_ENV)
    return load(Path(folder).expanduser()) if folder else None


INSECURE_FLAG = "--insecure"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_bind(keys: ClusterKeys | None, insecure: bool = False) -> str:
    """Where a daemon binds when not told: every address with keys (or ``--insecure``),
    loopback without."""
    return "0.0.0.0" if keys is not None or insecure else "127.0.0.1"


def protection_refusal(what: str, host: str, keys: ClusterKeys | None, insecure: bool) -> str | None:
    """Why ``what`` may not bind ``host`` (None when it may): without keys only loopback is
    allowed, unless the operator said ``--insecure``."""
    if keys is not None or insecure or is_loopback(host):
        return None
    return (
        f"{what} would listen on {host or 'every address'} without cluster keys, so anyone on the network "
        f"could run code on every board; give --keys DIR (make them with `squall keygen --out DIR`), bind "
        f"127.0.0.1, or accept the risk with {INSECURE_FLAG}"
    )


# One ZAP handler per context (ZeroMQ asks the handler bound in the socket's own context);
# the context is kept in the value so its id cannot be reused while the entry exists.
_authenticators: dict[int, tuple[zmq.Context, object]] = {}
_auth_lock = threading.Lock()


def secure_server(sock: zmq.Socket, keys: ClusterKeys | None) -> None:
    """Make a binding socket a CURVE server that accepts only cluster members. Call before bind."""
    if keys is None:
        return
    ctx = sock.context
    with _auth_lock:
        if id(ctx) not in _authenticators:
            from zmq.auth.thread import ThreadAuthenticator

            auth = ThreadAuthenticator(ctx, log=logging.getLogger("squall.security.zap"))
            auth.start()
            auth.configure_curve_callback(domain="*", credentials_provider=_OnlyClusterKey(keys.public))
            _authenticators[id(ctx)] = (ctx, auth)
    sock.curve_server = True
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public


def secure_client(sock: zmq.Socket, keys: ClusterKeys | None) -> None:
    """Make a connecting socket a CURVE client of a cluster server. Call before connect."""
    if keys is None:
        return
    sock.curve_serverkey = keys.public
    sock.curve_publickey = keys.public
    sock.curve_secretkey = keys.secret


def release(ctx: zmq.Context) -> None:
    """Stop the ZAP thread of ``ctx`` (if ``secure_server`` started one). Idempotent."""
    with _auth_lock:
        entry = _authenticators.pop(id(ctx), None)
    if entry is not None:
        entry[1].stop()  # type: ignore[attr-defined]


class _OnlyClusterKey:
    def __init__(self, public: bytes) -> None:
        self.public = public

    def callback(self, domain: str, z85_key: bytes) -> bool:
        return hmac.compare_digest(z85_key, self.public)
