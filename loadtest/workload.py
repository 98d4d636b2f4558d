"""What the load test sends: a pool of utterances drawn from task data or files, in a chosen mix and length.

Sources (`--utterances`, repeatable; `--mix` weighs them):
    corpus          the embedded demo corpus (core/corpus.py), every utterance of train and dev
    sst2, mrpc ...  a GLUE task's dev and train texts (pairs included), from --glue-dir
    PATH            a text file: one utterance per line; a tab separates text and text_pair

Lengths (`--words`): `natural` keeps each utterance as it is; `N` or `MIN:MAX` resizes every
utterance to that many words (uniform in MIN..MAX), by truncating it or by appending further
utterances of the same source. The tokenizer pads to power-of-two buckets, so length is the knob
that moves the cost of a request most.

`UtteranceOptions` declares these settings once: `mtserve loadtest`'s, `mtserve bench`'s and the locustfile's
flags are generated from it (core/options.py).

Standard library only (plus the project's data loaders): the Locust process imports it under gevent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from mtserve.core.errors import UserError
from mtserve.core.options import Options, option

# The pool's defaults, for `mtserve loadtest` and the locustfile alike (one owner: here).
POOL_SIZE = 2000  # utterances drawn for a run
WORDS = "natural"  # lengths as the sources have them


@dataclass(frozen=True)
class Utterance:
    text: str
    pair: str | None = None

    def to_list(self) -> list:
        return [self.text, self.pair]

    @classmethod
    def from_list(cls, row) -> Utterance:
        return cls(str(row[0]), None if len(row) < 2 or row[1] is None else str(row[1]))


def parse_words(spec: str | None) -> tuple[int, int] | None:
    """'natural' / None -> None; '12' -> (12, 12); '8:64' -> (8, 64)."""
    if spec is None or str(spec).strip().lower() in ("", "natural"):
        return None
    s = str(spec).strip()
    try:
        lo, hi = s.split(":", 1) if ":" in s else (s, s)
        lo_i, hi_i = int(lo), int(hi)
    except ValueError:
        raise UserError(f"--words must be 'natural', N or MIN:MAX, got {spec!r}") from None
    if not 1 <= lo_i <= hi_i:
        raise UserError(f"--words needs 1 <= MIN <= MAX, got {spec!r}")
    return lo_i, hi_i


def is_mix_file(value: str | None) -> bool:
    """`--mix` names a traffic mix file unless it is the older form, the weights of the utterance sources
    ('3,1'): only digits, dots, commas and spaces."""
    if not value or not str(value).strip():
        return False
    return not set(str(value).strip()) <= set("0123456789., ")


def parse_mix(sources: list[str], mix: str | None) -> list[tuple[str, float]]:
    """Pair each source with its weight. `mix` is 'W1,W2,...' (one per source) or None (equal weights)."""
    if not sources:
        sources = ["corpus"]
    if not mix:
        return [(s, 1.0) for s in sources]
    parts = [p.strip() for p in str(mix).split(",") if p.strip()]
    if len(parts) != len(sources):
        raise UserError(f"--mix gives {len(parts)} weight(s) for {len(sources)} source(s) {sources}")
    try:
        weights = [float(p) for p in parts]
    except ValueError:
        raise UserError(f"--mix weights must be numbers, got {mix!r}") from None
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise UserError(f"--mix weights must be >= 0 and not all 0, got {mix!r}")
    return [(s, w) for s, w in zip(sources, weights, strict=True) if w > 0]


def _read_file(path: Path) -> list[Utterance]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read utterances from {path}: {e}") from None
    out = []
    for line in lines:
        if not line.strip():
            continue
        text, _, pair = line.partition("\t")
        out.append(Utterance(text.strip(), pair.strip() or None))
    if not out:
        raise UserError(f"{path}: no utterances (one per line; a tab separates text and text_pair)")
    return out


def load_source(name: str, glue_dir: str | Path | None = None) -> list[Utterance]:
    """Every utterance of one source (see the module docstring)."""
    if name == "corpus":
        from mtserve.core import corpus

        data = next(iter(corpus.generate().values()))
        return [Utterance(t) for t in data.train.texts + data.dev.texts]
    path = Path(name).expanduser()
    if path.is_file():
        return _read_file(path)
    from mtserve.core.task_file import GLUE, load_glue

    if name in GLUE:
        if not glue_dir:
            raise UserError(f"utterance source {name!r} is a GLUE task: give --glue-dir")
        data = load_glue(name, glue_dir)
        out = []
        for split in (data.dev, data.train):
            pairs = split.pairs or [None] * len(split.texts)
            out += [Utterance(t, p) for t, p in zip(split.texts, pairs, strict=True)]
        return out
    raise UserError(f"unknown utterance source {name!r}: 'corpus', a GLUE task ({', '.join(GLUE)}) or a file")


def _resize(first: Utterance, source: list[Utterance], words: int, rng: random.Random) -> Utterance:
    tokens = first.text.split()
    guard = 0
    while len(tokens) < words and guard < 10_000:
        tokens += rng.choice(source).text.split()
        guard += 1
    return Utterance(" ".join(tokens[:words]), first.pair)


def build_pool(
    sources: list[str] | None = None,
    mix: str | None = None,
    words: str | None = WORDS,
    size: int = POOL_SIZE,
    seed: int = 0,
    glue_dir: str | Path | None = None,
) -> list[Utterance]:
    """`size` utterances drawn (seeded) from the weighted sources, resized to the requested lengths."""
    weighted = parse_mix(list(sources or ["corpus"]), mix)
    length = parse_words(words)
    rng = random.Random(seed)
    loaded = {name: load_source(name, glue_dir) for name, _ in weighted}
    names = [n for n, _ in weighted]
    weights = [w for _, w in weighted]
    pool = []
    for _ in range(max(1, int(size))):
        src = loaded[rng.choices(names, weights)[0]]
        u = rng.choice(src)
        if length is not None:
            u = _resize(u, src, rng.randint(*length), rng)
        pool.append(u)
    return pool


@dataclass
class UtteranceOptions(Options):
    """Which utterances a load test sends: the sources, their mix, the lengths, the pool drawn from them."""

    utterances: list[str] = option(
        ["corpus"],
        "corpus, a GLUE task name (with --glue-dir) or a file of lines (text<TAB>pair); repeatable",
        repeat=True,
        metavar="SRC",
        show=",".join,
        check=(bool, "must name at least one source"),
    )
    mix: str | None = option(
        None,
        "a traffic mix file (YAML: task sets and groups, each with its share, or zipf: s; docs/loadtest.md): each "
        "utterance needs one entry's tasks instead of every task; or, as numbers, the weights of the --utterances "
        "sources, e.g. 3,1",
        show=lambda v: v or "every task, sources weighed equally",
        metavar="FILE|W,...",
    )
    words: str = option(WORDS, "utterance length in words: natural, N or MIN:MAX", metavar="LENGTH")
    glue_dir: str | None = option(
        None, "folder holding GLUE's task folders", show=lambda v: v or "none", metavar="DIR"
    )
    pool_size: int = option(
        POOL_SIZE, "utterances drawn for the run", check=(lambda n: n >= 1, "must be >= 1")
    )
    seed: int = option(0, "seed of the pool's draw and of the users' choices from it")

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_words(self.words)  # a bad --words or --mix fails here, before a server starts
        parse_mix(list(self.utterances), self.source_weights)

    @property
    def source_weights(self) -> str | None:
        """--mix as the sources' weights; None when it names a traffic mix file (loadtest/mix.py reads it)."""
        return None if is_mix_file(self.mix) else self.mix

    def pool(self) -> list[Utterance]:
        """`pool_size` utterances drawn (seeded) from the sources."""
        return build_pool(
            self.utterances, self.source_weights, self.words, self.pool_size, self.seed, self.glue_dir
        )
