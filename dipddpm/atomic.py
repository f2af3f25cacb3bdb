"""Writing files so that a reader never sees half of one: the project's one atomic writer.

A file is written beside its destination, flushed and fsynced, then renamed over it
(`os.replace` is atomic on one filesystem): a crash or a full disk leaves the old file or
the new, never a mixture. A folder of files is installed the same way (`install_tree`).
Imports nothing heavy, so the sweep's hub actor (no torch) can use it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path


def atomic_write_bytes(path: str | Path, data: bytes, mode: int = 0o666) -> None:
    """`data` as the file `path`: a temp file in the same folder, fsynced, then renamed in. The file gets
    `mode` less the umask (mkstemp makes 0600; results and reports are for sharing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, mode & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def safe_relative(rel: str) -> Path:
    """A relative path inside a folder, or ValueError (absolute, empty, '.' or '..' parts)."""
    p = Path(rel)
    if p.is_absolute() or not p.parts or any(part in ("", ".", "..") for part in p.parts):
        raise ValueError(f"not a relative file path: {rel!r}")
    return p


def install_tree(final: Path, files: dict[str, bytes]) -> None:
    """`files` (relative path -> bytes) as the folder `final`: written aside, then renamed in, replacing
    an earlier folder of that name whole (a retried trial's files)."""
    rels = {safe_relative(rel): data for rel, data in files.items()}  # every path checked before any is written
    tag = uuid.uuid4().hex[:8]
    staging = final.with_name(f".{final.name}.staging-{tag}")
    staging.mkdir(parents=True)
    try:
        for rel, data in rels.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    aside = None
    if final.exists():
        aside = final.with_name(f".{final.name}.old-{tag}")
        final.rename(aside)
    staging.rename(final)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
