"""The plugin's one kind of failure: a line for the user, and the exit status to end with.

Every module of the plugin raises it, from reading a kubeconfig to a refused
API call, so it lives apart from all of them; the command line turns it into
one ``Error: ...`` line on stderr instead of a traceback.
"""

from __future__ import annotations

__all__ = ["CliError", "Forbidden"]


class CliError(Exception):
    """A failure to report as one ``Error: ...`` line on stderr, with an exit code."""

    def __init__(self, message: str, *, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Forbidden(CliError):
    """The API server refused a call (403): RBAC, or an admission policy.

    A command that knows what its call needed catches it to name the
    permission to ask for; elsewhere it is reported like any other error.
    """
