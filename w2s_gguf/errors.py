"""The exception types a user sees: problems they can fix.

The message names the problem and the fix in one line; the CLI prints it
and exits with code 2, without a traceback.
"""


class W2SError(Exception):
    """Bad input or environment that the user can fix (CLI exit code 2)."""


class SettingError(W2SError):
    """A setting with a bad value. The message names the library parameter
    (`n_train`); the CLI shows its own flag (`--n-train`) instead."""

    def __init__(self, param: str, problem: str):
        self.param, self.problem = param, problem
        super().__init__(f"{param} {problem}")
