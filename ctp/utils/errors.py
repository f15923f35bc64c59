"""The exceptions that reach users as one line: a bad input or a failed write
(:class:`CTPError`, exit status 2) and a stop by signal (:class:`Stopped`)."""

from __future__ import annotations

import signal


class CTPError(Exception):
    """A user-facing error: bad input, a missing file, a mismatched checkpoint.

    The CLI prints ``ctp: error: <message>`` and exits with status 2. The message names the
    file or field at fault and what was expected.
    """


class Stopped(KeyboardInterrupt):
    """A command stopped by SIGINT (Ctrl-C) or SIGTERM; ``kept`` says what it leaves on disk.

    The CLI prints ``ctp: stopped by <SIGNAL>; <kept>`` and exits with 128 + the signal's
    number (130, 143). A KeyboardInterrupt, so code that cleans up after Ctrl-C does so here.
    """

    def __init__(self, signum: int, kept: str = "") -> None:
        super().__init__(signum, kept)
        self.signum, self.kept = int(signum), kept

    @property
    def name(self) -> str:
        """The signal's name, e.g. ``SIGTERM``."""
        return signal.Signals(self.signum).name

    def keeping(self, kept: str) -> Stopped:
        """The same stop, saying ``kept`` about what is left on disk."""
        return Stopped(self.signum, kept)
