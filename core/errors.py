"""Errors that reach the user as one clear line instead of a traceback (exit statuses: core/exit_codes.py)."""


class UserError(Exception):
    """A problem with the user's input or environment (bad file, unknown task, bad flag value): exit 2."""


class Unreachable(UserError):
    """The server or endpoint a command needs did not answer (refused, timed out, not live): exit 3, so that CI
    and scripts tell "the deployment is down" from "the command was wrong"."""
