"""Atomic file writes: a temp file in the target's folder, fsync, then one rename.

Every file ctp writes for keeps (checkpoints, results JSON, run state, pictures) goes through
here, so a crash, a full disk or a concurrent reader never sees a torn file over a good one.
A write that fails on the file system's side (a full disk, a quota, an I/O error) leaves the
file there before unchanged, removes its temp file and raises :class:`WriteFailed`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ctp.utils.errors import CTPError


class WriteFailed(CTPError):
    """Writing ``path`` failed with ``error`` (e.g. ENOSPC): one line naming the file and
    what is kept (by default whether a file there before is unchanged). ``context`` starts the
    line (e.g. ``train teacher: at step 9, ``)."""

    def __init__(self, path: str | Path, error: OSError, kept: str | None = None,
                 context: str = "") -> None:
        self.path, self.error, self.context = Path(path), error, context
        if kept is None:
            kept = ("the file there before is unchanged" if self.path.exists()
                    else "nothing was written there")
        self.kept = kept
        reason = (error.strerror or str(error) or type(error).__name__).lower()
        super().__init__(f"{context}{reason} writing {self.path}; {kept}")

    def keeping(self, kept: str, context: str | None = None) -> WriteFailed:
        """The same failure, saying ``kept`` about what is left (and ``context`` first)."""
        return WriteFailed(self.path, self.error, kept,
                           self.context if context is None else context)


def os_error_of(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``: itself, or one it was raised from or while handling
    (``torch.save`` reports a failed write as a RuntimeError raised during the OSError)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(fh)`` on a temp file next to ``path``, then rename it over ``path``;
    a failure of the file system raises :class:`WriteFailed` and leaves ``path`` as it was."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would make it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        error = os_error_of(exc) if isinstance(exc, Exception) else None
        if error is None or isinstance(exc, CTPError):
            raise
        raise WriteFailed(path, error) from None
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically; NaN/inf are refused."""
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure to ``path`` atomically, in the format its suffix names (PNG
    without one)."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    return atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi))
