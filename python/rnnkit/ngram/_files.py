"""Writing files atomically: into a temporary file beside the target, renamed over it only
once complete, so that a reader (or a crash) never sees a partial file."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from .._checks import check_usable_path


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
    target = check_output_file(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output_file(path: str | os.PathLike[str], name: str = "path") -> Path:
    """``path`` as a Path when a file can be written there, else ``FileNotFoundError`` /
    ``NotADirectoryError`` naming it when its directory is missing (or not a directory), and
    ``IsADirectoryError`` when it is a directory. Callers check before the work whose result
    goes there (a model's training, a build), and the atomic write checks again: its own error
    would name its temporary file instead."""
    target = Path(check_usable_path(path, name))
    parent = target.parent
    if target.is_dir():
        raise IsADirectoryError(
            f"{name} {os.fspath(path)!r} is a directory; give the path of a file to write"
        )
    if not parent.exists():
        raise FileNotFoundError(
            f"{name} {os.fspath(path)!r} cannot be written: no directory {os.fspath(parent)!r}"
        )
    if not parent.is_dir():
        raise NotADirectoryError(
            f"{name} {os.fspath(path)!r} cannot be written: {os.fspath(parent)!r} is not a "
            "directory"
        )
    return target


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file: the same path once symbolic links and relative parts
    are resolved, or (both existing) the same inode, as hard links are."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # (one does not exist yet: different files)
        return False


def check_distinct_files(paths: dict[str, str | os.PathLike[str]]) -> None:
    """``ValueError`` naming both arguments when two of ``paths`` (argument name -> path, the
    outputs and the input of one call) are one file: writing one would lose the other."""
    named = list(paths.items())
    for i, (name, path) in enumerate(named):
        for other, other_path in named[i + 1 :]:
            if same_file(path, other_path):
                raise ValueError(
                    f"{name} and {other} must be different files, got {os.fspath(path)!r} and "
                    f"{os.fspath(other_path)!r}, which are the same file"
                )
