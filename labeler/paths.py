"""Where labeler keeps files (the cache dir) and how it writes them (atomically: a reader never sees half a file)."""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    """`$LABELER_CACHE_DIR`, else `$XDG_CACHE_HOME/labeler`, else `~/.cache/labeler`."""
    if os.environ.get("LABELER_CACHE_DIR"):
        return Path(os.environ["LABELER_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "labeler"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path` (`.<name>.tmp`) to write a file or a directory into; on success it
    replaces `path` in one rename, on failure (or Ctrl-C) it is removed. A stale one from a killed run is
    removed first. A directory can only replace a missing or empty one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    _remove(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def atomic_write(path: Path, data: str | bytes, mode: int | None = None) -> Path:
    """Write `data` to `path` atomically; `mode` (e.g. 0o600) is set before any byte is written."""
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)
