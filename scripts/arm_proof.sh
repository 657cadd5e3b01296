#!/usr/bin/env bash
# A proof on an ARM userland: a supervisor on arm64 Debian joins a Nimbus on this machine and
# runs a worker of examples/wordcount.py.
#
#   sudo scripts/arm_proof.sh [BUILD_DIR]        (default: .arm-proof/ in the repository)
#
# 1. builds an arm64 Debian bookworm root with debootstrap (minbase + python3-venv), run
#    through qemu-user-static registered with binfmt_misc; an existing root is reused
#    (FRESH=1 rebuilds it);
# 2. downloads Squall's supervisor dependencies as aarch64 wheels on this machine
#    (pip download --only-binary :all: --platform manylinux..._aarch64) and installs them
#    inside the root offline, into a virtual environment: no compiler, no network there;
# 3. starts Nimbus here (this machine's Python, with squall[nimbus]), a supervisor inside
#    the arm64 root (same network, so it reaches Nimbus on loopback), submits wordcount and
#    waits until every executor runs on the arm64 board and Nimbus measures traffic.
#
# Needs: root, debootstrap, qemu-user-static, binfmt-support (apt-get install ...), and
# squall[nimbus] importable by $PYTHON (default python3). Output: the steps with elapsed
# seconds, and $BUILD_DIR/result.txt. Exit 0 when the proof holds.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(mkdir -p "${1:-$REPO/.arm-proof}" && cd "${1:-$REPO/.arm-proof}" && pwd)"
ROOT="$BUILD/rootfs"
SUITE="${SUITE:-bookworm}"  # Python 3.11, as on Raspberry Pi OS bookworm
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
PYTHON="${PYTHON:-python3}"
TOPOLOGY="wc-arm64"
BOARD="arm64-board"
STARTED=$(date +%s)
RESULT="$BUILD/result.txt"
PIDS=()

step() { echo "[$(( $(date +%s) - STARTED ))s] $*" | tee -a "$RESULT"; }
die() { echo "arm_proof: $*" >&2; exit 1; }

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for m in proc sys; do
        if mountpoint -q "$ROOT/$m"; then umount -l "$ROOT/$m"; fi
    done
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || die "run it as root (debootstrap and chroot need it)"
for tool in debootstrap qemu-aarch64-static; do
    command -v "$tool" >/dev/null || die "$tool is missing: apt-get install debootstrap qemu-user-static binfmt-support"
done
"$PYTHON" -c "import squall, numpy" 2>/dev/null || die "$PYTHON cannot import squall[nimbus]: pip install '$REPO[nimbus]'"
: > "$RESULT"
step "host $(uname -m), $(nproc) cores; build folder $BUILD"

# -- binfmt_misc: arm64 binaries run through qemu transparently, also for the workers the
#    supervisor starts (an explicit qemu-aarch64-static prefix would not follow exec).
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 || die "cannot register qemu-aarch64 with binfmt_misc"
fi
step "binfmt: $(head -1 /proc/sys/fs/binfmt_misc/qemu-aarch64), $(qemu-aarch64-static --version | head -1)"

# -- 1. the arm64 root ---------------------------------------------------------------------
if [ "${FRESH:-0}" = 1 ]; then rm -rf "$ROOT"; fi
if [ ! -x "$ROOT/usr/bin/python3" ] || [ ! -e "$ROOT/.squall-rootfs-ok" ]; then
    rm -rf "$ROOT"
    step "debootstrap --arch=arm64 --variant=minbase $SUITE (second stage under qemu)"
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv \
        "$SUITE" "$ROOT" "$MIRROR" > "$BUILD/debootstrap.log" 2>&1 \
        || { tail -20 "$BUILD/debootstrap.log"; die "debootstrap failed (log: $BUILD/debootstrap.log)"; }
    touch "$ROOT/.squall-rootfs-ok"
    step "root built: $(du -sh --exclude=proc --exclude=sys "$ROOT" 2>/dev/null | cut -f1)"
else
    step "reusing the arm64 root in $ROOT (FRESH=1 rebuilds it)"
fi
for m in proc sys; do
    if mountpoint -q "$ROOT/$m"; then umount -l "$ROOT/$m"; fi
done
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
step "inside: $(chroot "$ROOT" uname -m), $(chroot "$ROOT" python3 --version), $(chroot "$ROOT" ldd --version | head -1)"

# -- 2. wheels on the host, offline install inside -----------------------------------------
rm -rf "$BUILD/wheels" && mkdir -p "$BUILD/wheels"
"$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w "$BUILD/wheels" "$REPO" > "$BUILD/pip-host.log" 2>&1 \
    || "$PYTHON" -m pip wheel --quiet --no-deps -w "$BUILD/wheels" "$REPO" >> "$BUILD/pip-host.log" 2>&1 \
    || die "cannot build Squall's wheel (log: $BUILD/pip-host.log)"
SQUALL_WHEEL="$(ls "$BUILD"/wheels/squall-*.whl)"
"$PYTHON" -m pip download --quiet --only-binary :all: --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
    -d "$BUILD/wheels" "$SQUALL_WHEEL" >> "$BUILD/pip-host.log" 2>&1 \
    || { tail -5 "$BUILD/pip-host.log"; die "a supervisor dependency has no aarch64 wheel (log: $BUILD/pip-host.log)"; }
step "wheels: $(cd "$BUILD/wheels" && ls | tr '\n' ' ')"
rm -rf "$ROOT/opt/wheels" "$ROOT/opt/squall" && cp -r "$BUILD/wheels" "$ROOT/opt/wheels"
chroot "$ROOT" python3 -m venv /opt/squall
chroot "$ROOT" /opt/squall/bin/pip install --quiet --no-index --find-links /opt/wheels squall \
    > "$BUILD/pip-arm64.log" 2>&1 || { cat "$BUILD/pip-arm64.log"; die "offline install inside the arm64 root failed"; }
step "installed in the arm64 venv: $(chroot "$ROOT" /opt/squall/bin/pip list --format=freeze 2>/dev/null \
    | grep -iE '^(squall|pyzmq|msgpack|psutil|prometheus)' | tr '\n' ' ')"
chroot "$ROOT" /opt/squall/bin/python -c "
import platform, sys
import squall.supervisor.daemon, squall.supervisor.worker, squall.cli
heavy = [m for m in ('numpy', 'networkx', 'pymetis') if m in sys.modules]
assert not heavy, heavy
print('python', platform.python_version(), 'on', platform.machine(), '- imports fine, no numpy/networkx/pymetis')
" | while read -r line; do step "$line"; done

# -- 3. Nimbus here, the supervisor there, wordcount across ---------------------------------
read -r NIMBUS_PORT W1 W2 < <("$PYTHON" -c "
from squall.localcluster import free_port, free_port_range
print(free_port(), *free_port_range(2))")
NIMBUS="127.0.0.1:$NIMBUS_PORT"
squall() { "$PYTHON" -m squall "$@"; }
rm -rf "$BUILD/nimbus-data"
squall nimbus --host 127.0.0.1 --port "$NIMBUS_PORT" --http-port 0 --data-dir "$BUILD/nimbus-data" \
    > "$BUILD/nimbus.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 60); do squall list --nimbus "$NIMBUS" >/dev/null 2>&1 && break; sleep 1; done
squall list --nimbus "$NIMBUS" >/dev/null || { cat "$BUILD/nimbus.log"; die "Nimbus did not start"; }
step "Nimbus on $NIMBUS (this machine, $(uname -m))"

chroot "$ROOT" /opt/squall/bin/squall supervisor --dry-run --id "$BOARD" --ports "$W1-$W2" --nimbus "$NIMBUS" \
    | sed 's/^/    /' | tee -a "$RESULT"
rm -rf "$ROOT/var/lib/squall"
chroot "$ROOT" /opt/squall/bin/squall supervisor --nimbus "$NIMBUS" --id "$BOARD" --slots 2 \
    --ports "$W1-$W2" --data-dir /var/lib/squall > "$BUILD/supervisor.log" 2>&1 &
PIDS+=($!)

alive() {
    "$PYTHON" - "$NIMBUS" "$BOARD" <<'EOF'
import sys
from squall.client import NimbusClient
with NimbusClient(sys.argv[1]) as c:
    sups = [s for s in c.cluster()["supervisors"] if s["id"] == sys.argv[2] and s["alive"]]
sys.exit(0 if sups else 1)
EOF
}
for _ in $(seq 120); do alive && break; sleep 1; done
alive || { cat "$BUILD/supervisor.log"; die "the arm64 supervisor did not register"; }
step "supervisor $BOARD (arm64, under qemu) registered with Nimbus"

squall submit "$REPO/examples/wordcount.py" --name "$TOPOLOGY" --workers 2 --nimbus "$NIMBUS" | tee -a "$RESULT"
running() {
    "$PYTHON" - "$NIMBUS" "$TOPOLOGY" "$BOARD" <<'EOF'
import sys
from squall.client import NimbusClient
with NimbusClient(sys.argv[1]) as c:
    a = c.assignment(sys.argv[2])
execs = a["executors"]
on_board = all(e["node"] == sys.argv[3] and e["pid"] for e in execs)
flowing = sum(r for _, _, r in a["traffic"])
print(f"{len(execs)} executors, all on {sys.argv[3]}: {on_board}; traffic {flowing:.0f} tuples/s")
sys.exit(0 if execs and on_board and flowing > 0 else 1)
EOF
}
ok=0
for _ in $(seq 180); do if running > "$BUILD/running.txt" 2>&1; then ok=1; break; fi; sleep 1; done
step "$(cat "$BUILD/running.txt")"
if [ "$ok" != 1 ]; then
    tail -30 "$BUILD/supervisor.log"
    tail -30 "$ROOT"/var/lib/squall/workers/*.log 2>/dev/null || true
    die "wordcount did not run on the arm64 board"
fi
sleep 5  # one more metrics window, so the figures below are steady
squall list --nimbus "$NIMBUS" | tee -a "$RESULT"
squall assignment "$TOPOLOGY" --nimbus "$NIMBUS" | tee -a "$RESULT"
WORKER_PID="$("$PYTHON" -c "
import sys
from squall.client import NimbusClient
with NimbusClient('$NIMBUS') as c:
    print(next(e['pid'] for e in c.assignment('$TOPOLOGY')['executors'] if e['pid']))")"
step "worker pid $WORKER_PID runs $(tr '\0' ' ' < "/proc/$WORKER_PID/cmdline" | cut -c1-80) through $(readlink "/proc/$WORKER_PID/exe")"
squall kill "$TOPOLOGY" -w 0 --nimbus "$NIMBUS" | tee -a "$RESULT"
step "PROOF OK: an arm64 supervisor ran wordcount's worker; total $(( $(date +%s) - STARTED )) s"
