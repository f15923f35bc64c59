"""The one exception type that reaches users as a one-line message."""


class CTPError(Exception):
    """A user-facing error: bad input, a missing file, a mismatched checkpoint.

    The CLI prints ``ctp: error: <message>`` and exits with status 2. The message names the
    file or field at fault and what was expected.
    """
