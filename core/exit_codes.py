"""The exit status of every `mtserve` command (docs/exit-codes.md is the table users read; tests/test_exit_codes.py
checks each). CI gates on these: 1 means the command ran and what it measured or checked failed; 2 that it was used
wrongly (a flag, a file, a name); 3 that the server or endpoint it needs did not answer."""

from __future__ import annotations

OK = 0
FAILED = (
    1  # ran, and a check or the SLO failed: loadtest, export --check, k8s validate, k8s render's validation
)
USAGE = 2  # a mistyped flag (argparse), a bad file, an unknown task or model: mtserve.core.errors.UserError
UNREACHABLE = 3  # the server or endpoint did not answer: mtserve.core.errors.Unreachable
INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report it (128 + 2)
