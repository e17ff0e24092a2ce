"""Files that readers on other processes or nodes must never see half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


__all__ = ["write_atomically"]


def write_atomically(
    path: Path, write: Callable[[BinaryIO], object], *, sync: bool = False
) -> None:
    """Create or replace ``path`` with what ``write`` puts into a binary file.

    ``write`` fills a temporary file in the same folder, which is then renamed over ``path``
    (atomic on POSIX file systems): a reader sees the old file or the new one, and a process
    that dies meanwhile leaves the old one. ``sync`` flushes the data to disk before the
    rename, so the new file survives a node that loses power right after. A failed write
    leaves no temporary file behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            if sync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
