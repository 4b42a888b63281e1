"""Writing files atomically: into a temporary file beside the target, renamed over it only
once complete, so that a reader (or a crash) never sees a partial file."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from .._checks import check_path


def _umask() -> int:
    """The process's umask, without changing it where Linux reports it (os.umask would set
    it for a moment, for every thread)."""
    try:
        found = re.search(r"^Umask:\s+([0-7]+)", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        found = None
    if found:
        return int(found.group(1), 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: str | os.PathLike[str], write: Callable[[str], None]) -> None:
    """Calls ``write(temporary path)``, then renames the temporary file over ``path``, with
    the permissions a new file gets (mkstemp's are private). On any error the temporary file
    is removed and ``path`` is untouched."""
    target = Path(check_path(path))
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
