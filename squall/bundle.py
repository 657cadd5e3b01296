"""Code bundles: the user's topology code, zipped by ``squall submit`` and unpacked on boards.

A bundle holds the topology file and the Python code it imports, as its project layout says
(``squall.topology.project``): for a plain file, every ``.py`` file in the file's folder and
every package folder (a folder with ``__init__.py``) below it, recursively — so ``from
helpers import x`` works in a worker as it did on the user's machine; for a streamparse
project, the topologies folder and everything under ``src/``; for a package (heron's
layout), the packages under the project root. Names in the bundle are relative to an import
root, so the unpacked bundle is the one folder a worker puts on ``sys.path``. Caches,
virtual environments and hidden folders are left out. Bundles are limited in size
(``MAX_BUNDLE_BYTES``), and unpacking refuses absolute paths and ``..`` (no writes outside the
target folder).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from squall.topology.project import LayoutError, detect_layout

MAX_BUNDLE_BYTES = 16 * 1024 * 1024


class BundleError(ValueError):
    """A bundle that cannot be built or unpacked; the message names the file or limit."""


def make_bundle(topology_file: Path) -> bytes:
    """Zip the code of the topology file's project (see module doc); deterministic bytes for
    the same files."""
    topology_file = topology_file.resolve()
    if not topology_file.is_file():
        raise BundleError(f"{topology_file}: no such file")
    try:
        layout = detect_layout(topology_file)
        files = layout.bundle_files()
    except LayoutError as exc:
        raise BundleError(str(exc)) from None
    root = layout.root
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, name in files:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
            if buf.tell() > MAX_BUNDLE_BYTES:
                raise BundleError(f"bundle of {root} exceeds {MAX_BUNDLE_BYTES // (1024 * 1024)} MB")
    data = buf.getvalue()
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"bundle of {root} exceeds {MAX_BUNDLE_BYTES // (1024 * 1024)} MB")
    return data


def digest(bundle: bytes) -> str:
    return hashlib.sha256(bundle).hexdigest()[:16]


def extract_bundle(bundle: bytes, target: Path) -> Path:
    """Unpack into ``target`` (created); refuse unsafe member names and oversized content."""
    if len(bundle) > MAX_BUNDLE_BYTES:
        raise BundleError(f"bundle of {len(bundle)} bytes exceeds the limit of {MAX_BUNDLE_BYTES}")
    try:
        zf = zipfile.ZipFile(io.BytesIO(bundle))
    except zipfile.BadZipFile as exc:
        raise BundleError(f"not a bundle: {exc}") from None
    with zf:
        total = sum(i.file_size for i in zf.infolist())
        if total > 4 * MAX_BUNDLE_BYTES:
            raise BundleError(f"bundle unpacks to {total} bytes, over the limit")
        target.mkdir(parents=True, exist_ok=True)
        base = target.resolve()
        for info in zf.infolist():
            dest = (base / info.filename).resolve()
            if info.filename.startswith("/") or not dest.is_relative_to(base):
                raise BundleError(f"bundle member {info.filename!r} would be written outside the bundle folder")
        zf.extractall(base)
    return target
