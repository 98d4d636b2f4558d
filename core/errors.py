"""Errors that reach the user as one clear line instead of a traceback."""


class UserError(Exception):
    """A problem with the user's input or environment (bad file, unknown task, unreachable URL)."""
