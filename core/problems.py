"""Every problem of an input in one run: a check collects them (at most a few rows per file) and fails once,
listing them all, so a task owner fixes a file in one go instead of one rerun per problem."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from mtserve.core.errors import UserError

ROWS_PER_FILE = 3  # row problems listed per data file; the rest are counted


def did_you_mean(word, known: Iterable) -> str:
    """' (did you mean 'label'?)' when a known name is close to `word`, else ''."""
    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Problems:
    """The problems found so far, in the order found. `row` problems of one file past ROWS_PER_FILE are counted,
    not listed: a file broken on every row is one file to fix, not 20,000 lines."""

    def __init__(self) -> None:
        self.items: list[tuple[Path | None, str]] = []
        self.rows: Counter = Counter()

    def __len__(self) -> int:
        """Every problem found, listed or counted."""
        return len(self.items) + sum(max(0, n - ROWS_PER_FILE) for n in self.rows.values())

    def add(self, message: str) -> None:
        self.items.append((None, message))

    def row(self, path: Path, message: str) -> None:
        self.rows[path] += 1
        if self.rows[path] <= ROWS_PER_FILE:
            self.items.append((path, message))

    def capture(self, error: UserError) -> None:
        self.add(str(error))

    def messages(self) -> list[str]:
        last = {path: i for i, (path, _) in enumerate(self.items) if path is not None}
        out = []
        for i, (path, message) in enumerate(self.items):
            out.append(message)
            if path is not None and last[path] == i and self.rows[path] > ROWS_PER_FILE:
                more = self.rows[path] - ROWS_PER_FILE
                out.append(f"{path}: {more} more row(s) with problems (the first {ROWS_PER_FILE} are listed)")
        return out

    def raise_if_any(self, subject: str) -> None:
        """One UserError listing every problem (just the problem when there is one)."""
        messages = self.messages()
        if len(messages) == 1:
            raise UserError(messages[0])
        if messages:
            raise UserError(
                f"{subject}: {len(messages)} problems\n" + "\n".join(f"  - {m}" for m in messages)
            )
