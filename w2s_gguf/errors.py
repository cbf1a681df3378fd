"""The one exception type a user sees: a problem they can fix.

The message names the problem and the fix in one line; the CLI prints it
and exits with code 2, without a traceback.
"""


class W2SError(Exception):
    """Bad input or environment that the user can fix (CLI exit code 2)."""
