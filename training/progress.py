"""Progress of long training work that can be watched without a terminal (nohup, CI, a Kubernetes Job's logs).

tqdm's bars are off when stderr is not a terminal and vanish when it is; so besides them, `mtserve train` writes
timestamped lines to stderr: when each task and stage starts and ends (task i of n, the time it took, an estimate
of the time left), and during a long stage a line at least every `every_s` seconds (steps done, the loss, the
learning rate). Every training step's loss and learning rate (averaged over a few steps: at most
RECORDS_PER_STAGE records a stage) also go to tasks/<task>/train_log.jsonl in the run directory (LOG_FILE), which
the reports plot (training/accuracy_report.py: training_loss.png).

The time left is the work still to do at the pace of the work done. Work is counted in layer-rows: a training step
over B rows through L layers is 3 x B x L (forward and backward), a forward pass B x L. `mtserve train` plans every
task's work by kind of stage (full fine-tuning, trunk features, search, ...) before the first task starts
(pipeline.stage_work), so the estimate exists from the first minute and covers the whole run, not the current task
only; each kind is paced by its own stages once one has run (after the first task, the estimate is the first
task's pace applied to the rest), a kind not run yet by the pace of the run so far.

The training loops find the Progress to report to with `current()`: the one `using()` made current (`mtserve
train` makes its own), or a default one at the normal level that writes no log file.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

QUIET, NORMAL, VERBOSE = 0, 1, 2
LEVELS = {"quiet": QUIET, "normal": NORMAL, "verbose": VERBOSE}
LOG_FILE = "train_log.jsonl"  # in tasks/<task>/ of the run directory
RECORDS_PER_STAGE = 200  # at most this many loss records per training loop: every step of a short one


def stamp(message: str) -> str:
    """A log line: the local time to the second, then the message."""
    return f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"


def duration(seconds: float) -> str:
    s = round(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """Where a training run writes its progress: console lines (by level) and each task's loss log."""

    def __init__(self, level: int = NORMAL, every_s: float = 60.0, stream=None, clock=time.monotonic):
        self.level, self.every_s = level, every_s
        self.stream = stream  # None: sys.stderr when written (pytest swaps it)
        self.clock = clock
        self._last_line = clock()
        self.work: dict[str, float] = {}  # task -> planned work (layer-rows)
        self.planned: dict[str, float] = {}  # kind of stage (full, search, ...) -> planned work, every task
        self.done_by: dict[str, float] = {}  # kind -> work done
        self.seconds_by: dict[str, float] = {}  # kind -> seconds its finished stages took
        self.kind: str | None = None  # of the stage running now
        self._kind_start = 0.0
        self.t0: float | None = None
        self.done = 0.0
        self.task_name: str | None = None
        self.stages: list[str] = []  # the stages open now, outermost first
        self._log = None

    # ------------------------------------------------------------ lines
    def line(self, message: str, level: int = NORMAL) -> None:
        if self.level < level:
            return
        from tqdm import tqdm

        out = self.stream or sys.stderr
        with tqdm.external_write_mode(file=out):  # a bar on the same stream is cleared, then redrawn
            out.write(stamp(message) + "\n")
            out.flush()
        self._last_line = self.clock()

    def warn(self, message: str) -> None:
        """Shown at every level, --quiet included."""
        self.line(f"WARNING: {message}", QUIET)

    def due(self) -> bool:
        return self.level >= NORMAL and self.clock() - self._last_line >= self.every_s

    # ------------------------------------------------------------ the plan and the time left
    def plan(self, work: dict[str, dict[str, float] | float]) -> None:
        """The run's tasks in order, each with its planned work by kind of stage ({"full": ..., "search": ...};
        none for a task kept from an interrupted run), or a number alone (one kind)."""
        by_task = {t: w if isinstance(w, dict) else {"": float(w)} for t, w in work.items()}
        self.work = {t: sum(w.values()) for t, w in by_task.items()}
        self.planned = {}
        for w in by_task.values():
            for kind, units in w.items():
                self.planned[kind] = self.planned.get(kind, 0.0) + units
        self.done_by, self.seconds_by = {}, {}
        self.t0, self.done = self.clock(), 0.0

    def advance(self, units: float) -> None:
        self.done += units
        kind = self.kind if self.kind in self.planned else ""
        self.done_by[kind] = self.done_by.get(kind, 0.0) + units

    def time_left(self) -> str:
        """Each kind of stage's work left at the pace that kind has gone so far (a search step on cached
        features costs less than a full fine-tuning step through as many layers); a kind not started yet at the
        pace of the whole run so far."""
        total = sum(self.planned.values())
        elapsed = self.clock() - self.t0 if self.t0 is not None else 0.0
        if total <= 0 or self.done <= 0 or elapsed < 1:
            return "time left: not known yet"
        seconds = dict(self.seconds_by)
        if self.kind is not None:
            seconds[self.kind] = seconds.get(self.kind, 0.0) + self.clock() - self._kind_start
        overall = elapsed / self.done
        left = 0.0
        for kind, planned in self.planned.items():
            done, spent = self.done_by.get(kind, 0.0), seconds.get(kind, 0.0)
            pace = spent / done if done > 0 and spent >= 1 else overall
            left += max(0.0, planned - done) * pace
        return f"about {duration(left)} left of the run ({min(self.done / total, 1.0):.0%} of its work done)"

    def where(self) -> str:
        if self.task_name is None:
            return ""
        names = list(self.work)
        i = names.index(self.task_name) + 1 if self.task_name in names else 1
        return f"{self.task_name} (task {i} of {max(len(names), 1)})"

    # ------------------------------------------------------------ tasks and stages
    @contextlib.contextmanager
    def task(self, name: str, log_dir: Path | None = None, keep: tuple[str, ...] = ()) -> Iterator[None]:
        """One task's work. `log_dir`: its loss log goes to log_dir/LOG_FILE, started afresh but for the records
        of the stages in `keep` (a resumed task keeps its full fine-tuning, and that stage's records)."""
        if name not in self.work:  # a task trained on its own (mtserve task add / retrain): task 1 of 1
            self.plan({name: 0.0})
        self.task_name, start = name, self.clock()
        if log_dir is not None:
            path = log_dir / LOG_FILE
            kept = [r for r in read_log(path) if r.get("stage") in keep] if keep and path.is_file() else []
            self._log = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
            for r in kept:
                self._log.write(json.dumps(r) + "\n")
        self.line(f"{self.where()}: started; {self.time_left()}")
        try:
            yield
            self.line(f"{self.where()}: done in {duration(self.clock() - start)}; {self.time_left()}")
        finally:
            if self._log is not None:
                self._log.close()
            self._log, self.task_name = None, None

    @contextlib.contextmanager
    def stage(
        self, what: str, units: float = 0.0, level: int = NORMAL, kind: str | None = None
    ) -> Iterator[dict]:
        """A stage of the current task: a line when it starts and one when it ends, with the time it took, the
        outcome (set `outcome["text"]` inside) and the time left. `units`: its planned work, which counts as done
        when it ends, however far its loops got (a cache hit skips a feature pass's loop); `kind`: which of the
        plan's kinds of work it is (the time left paces each kind on its own)."""
        start, done0, outcome = self.clock(), self.done, {"text": ""}
        outer = kind is not None and self.kind is None
        if outer:
            self.kind, self._kind_start = kind, start
        self.stages.append(what)
        where = f"{self.where()}: " if self.task_name else ""
        self.line(f"{where}{what} started", level)
        try:
            yield outcome
        finally:
            self.stages.pop()
            if units:
                self.advance(done0 + units - self.done)
            if outer:
                self.seconds_by[kind] = self.seconds_by.get(kind, 0.0) + self.clock() - start
                self.kind = None
        text = f": {outcome['text']}" if outcome["text"] else ""
        self.line(f"{where}{what} done in {duration(self.clock() - start)}{text}; {self.time_left()}", level)

    def loop(self, items: Iterable, total: int, what: str, units: float = 0.0) -> Loop:
        """Iterate `items` (`total` of them: training steps or batches) with a tqdm bar on a terminal and a line
        at least every `every_s` seconds anywhere; `units`: the loop's work, counted as it goes."""
        return Loop(self, items, total, what, units)

    def record(self, row: dict) -> None:
        if self._log is not None:
            self._log.write(json.dumps(row) + "\n")
            self._log.flush()


class Loop:
    """A training loop or a pass over batches, as Progress.loop makes it; `record(loss, lr)` once a step."""

    def __init__(self, progress: Progress, items: Iterable, total: int, what: str, units: float):
        self.p, self.items, self.total, self.what = progress, items, max(1, total), what
        self.per_step = units / self.total
        self.step = 0
        self.every = max(1, -(-self.total // RECORDS_PER_STAGE))  # ceil: at most RECORDS_PER_STAGE records
        self._sum, self._n = 0.0, 0
        self.loss: float | None = None
        self.lr: float | None = None
        self.start = progress.clock()

    def __iter__(self) -> Iterator:
        from tqdm.auto import tqdm

        bar = tqdm(
            self.items,
            total=self.total,
            desc=f"{self.p.task_name}: {self.what}" if self.p.task_name else self.what,
            leave=False,
            disable=True if self.p.level == QUIET else None,  # None: on a terminal only
            file=self.p.stream,
        )
        for item in bar:
            yield item
            self.tick()

    def tick(self) -> None:
        """One step done (a loop not iterated through this one, e.g. Hugging Face's Trainer, calls it)."""
        self.step += 1
        self.p.advance(self.per_step)
        if self.p.due():
            self.p.line(self.heartbeat())

    def record(self, loss, lr: float) -> None:
        """This step's loss (a tensor: read back to the CPU only every few steps) and learning rate."""
        self._sum = self._sum + loss.detach().float()
        self._n += 1
        self.lr = lr
        step = self.step + 1  # record is called inside the step, before the loop counts it
        if step % self.every == 0 or step == self.total:
            self.record_mean(step, float(self._sum) / self._n, lr)
            self._sum, self._n = 0.0, 0

    def record_mean(self, step: int, loss: float, lr: float) -> None:
        """The mean loss of the steps up to `step` since the last record, to the task's loss log."""
        self.loss, self.lr = loss, lr
        self.p.record(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "task": self.p.task_name,
                "phase": self.p.stages[0] if self.p.stages else "",
                "stage": self.what,
                "step": step,
                "steps": self.total,
                "loss": round(loss, 6),
                "lr": lr,
            }
        )

    def heartbeat(self) -> str:
        elapsed = self.p.clock() - self.start
        left = elapsed * (self.total - self.step) / self.step if self.step else 0.0
        parts = [f"step {self.step} of {self.total} ({self.step / self.total:.0%})"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if self.lr is not None:
            parts.append(f"lr {self.lr:.2e}")
        return (
            f"{self.p.where() or 'progress'}: {self.what}: {', '.join(parts)}; this stage about "
            f"{duration(left)} more; {self.p.time_left()}"
        )


def read_log(path: Path) -> list[dict]:
    """A task's loss log (LOG_FILE); a line cut short by an interruption is skipped."""
    rows = []
    for text in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return rows


_CURRENT: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("progress", default=None)


def current() -> Progress:
    p = _CURRENT.get()
    if p is None:
        p = Progress()
        _CURRENT.set(p)
    return p


@contextlib.contextmanager
def using(progress: Progress) -> Iterator[Progress]:
    token = _CURRENT.set(progress)
    try:
        yield progress
    finally:
        _CURRENT.reset(token)
