# Over 700 lines: one tokenizer copied whole into every repository's tokenizer model (the stock image has no mtserve).
"""BERT WordPiece tokenizer for the serving side, in pure Python (standard library + numpy only).

It runs inside the stock Triton python backend, where neither `transformers` nor `tokenizers`
exists, and produces exactly the `input_ids` / `token_type_ids` / `attention_mask` of the Hugging
Face *fast* BERT tokenizer (`tokenizers`: AddedVocabulary + BertNormalizer + BertPreTokenizer +
WordPiece + the BERT template post-processor, `truncation=True` with the default "longest_first"
strategy). The pipeline, per input string:

1. Special tokens ([CLS], [SEP], [PAD], [UNK], [MASK] and `never_split`) are matched verbatim in
   the raw text, leftmost-longest, and emitted as single ids (HF's non-normalized added tokens).
2. BertNormalizer on the rest: drop NUL, U+FFFD and "other" characters (Cc/Cf/Co/... as the Rust
   `unicode_categories` tables define them, except \\t \\n \\r); map whitespace to ' '; put spaces
   around CJK ideographs; if stripping accents, NFD then drop non-spacing marks; lower-case each
   character on its own (Rust `char::to_lowercase`: no final-sigma rule, unlike `str.lower`).
3. BertPreTokenizer: split on spaces and isolate every punctuation character (ASCII punctuation
   plus Unicode P*, again per the Rust tables).
4. WordPiece: a word of more than `max_input_chars_per_word` characters is [UNK]; otherwise greedy
   longest-match-first with "##" continuations, and [UNK] for the whole word if that fails.

The character tables do not come from `unicodedata`, whose Unicode version depends on the Python
build and differs from the Rust tables (e.g. the reference drops private-use characters but keeps
unassigned ones, treats U+000B/U+000C/U+0085 as control characters, keeps marks newer than its
category table when stripping accents, lower-cases scripts newer than Python's database). They
are embedded below (`_TABLES_BLOB`), derived by probing the reference `tokenizers` on every code
point (export/tokenizer_export.py regenerates them; the tests check them), so the result does
not depend on the Python version of the serving image. NFD's canonical reordering, the one
context-dependent step, uses the reference's own set of non-starters.

Inputs are `str`. Byte strings from Triton must be decoded with `decode_utf8`, which rejects
invalid UTF-8 with a ValueError (the Triton model turns that into an error response) instead of
silently replacing bytes. Lone surrogates in a `str` (which the reference cannot even accept) are
treated as control characters and dropped.

Differences from `transformers`' call API, on purpose: `encode(text, text_pair="")` is a pair with
an empty second segment (as `tokenizers` and the batched `transformers` call do); the single-text
`transformers` call treats an empty `text_pair` like None.

Why one long file: it is copied beside the tokenizer model into every repository and imported there by
name (serving/models/tokenizer.py); one self-contained file is what the stock image can import.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import inspect
import json
import re
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["WordPieceTokenizer", "decode_utf8", "SETTINGS_FILE", "VOCAB_FILE"]

SETTINGS_FILE = "tokenizer_settings.json"
VOCAB_FILE = "vocab.txt"
FORMAT = "mtserve-wordpiece/1"

_HANGUL_S, _HANGUL_L, _HANGUL_V, _HANGUL_T = 0xAC00, 0x1100, 0x1161, 0x11A7
_HANGUL_COUNT = 19 * 21 * 28
_CACHE_LIMIT = 200_000  # words kept in the per-tokenizer WordPiece cache


def decode_utf8(b: bytes | bytearray | memoryview) -> str:
    """Decode one request string; raise ValueError (with the offending offset) on invalid UTF-8."""
    if isinstance(b, str):
        return b
    if not isinstance(b, bytes | bytearray | memoryview):
        raise ValueError(f"expected bytes to decode as UTF-8, got {type(b).__name__}")
    try:
        return bytes(b).decode("utf-8")
    except UnicodeDecodeError as e:
        bad = bytes(b)[e.start : e.end]
        raise ValueError(
            f"input text is not valid UTF-8: {e.reason} at byte offset {e.start} "
            f"(bytes {bad!r}); send UTF-8 encoded strings"
        ) from None


# ----------------------------------------------------------------------------------------------
# Character tables


@functools.lru_cache(maxsize=1)
def _tables() -> dict[str, Any]:
    return json.loads(zlib.decompress(base64.b85decode("".join(_TABLES_BLOB))))


def _first(pair: tuple[int, str]) -> int:
    return pair[0]


def _char_class(ranges: Iterable[Sequence[int]]) -> str:
    """Inclusive code-point ranges -> the inside of a regex character class."""
    parts = []
    for lo, hi in ranges:
        parts.append(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}")
    return "".join(parts)


class _Charset:
    """Compiled regexes and translate tables for one normalizer configuration."""

    def __init__(self, lowercase: bool, strip_accents: bool, chinese: bool):
        t = _tables()
        self.lowercase, self.strip_accents, self.chinese = lowercase, strip_accents, chinese
        # Lone surrogates cannot reach the reference at all; drop them like control characters.
        drop = [*t["drop"], [0xD800, 0xDFFF]]
        self.drop_re = re.compile(f"[{_char_class(drop)}]")
        self.chinese_re = re.compile(f"([{_char_class(t['chinese'])}])")
        punct = _char_class(t["punct"])
        self.word_re = re.compile(f"[{punct}]|[^{punct} ]+")
        self.reorder_re = re.compile(f"[{_char_class(t['reorder'])}]")
        self.ccc = {cp: v for lo, hi, v in t["ccc"] for cp in range(lo, hi + 1)}

        lower = {int(k): "".join(map(chr, v)) for k, v in t["lower_map"].items()}
        self.lower_map = lower
        # ASCII fast path: only control characters need a table; ASCII lower-casing is str.lower.
        ascii_lower = {k: v for k, v in lower.items() if k < 128}
        if ascii_lower != {c: chr(c + 32) for c in range(ord("A"), ord("Z") + 1)}:
            raise RuntimeError("unexpected ASCII lower-case table")
        dropped = {cp for lo, hi in t["drop"] for cp in range(lo, min(hi, 127) + 1)}
        self.ascii_map: dict[int, str | None] = {cp: None for cp in dropped}
        self.ascii_map.update({cp: " " for cp in t["space"] if cp < 128})
        self.ascii_ctrl_re = re.compile(f"[{_char_class([[c, c] for c in sorted(self.ascii_map)])}]")

        # One translate table for: whitespace -> ' ', accent stripping (per character), lower-casing.
        def low(s: str) -> str:
            return "".join(lower.get(ord(c), c) for c in s) if lowercase else s

        # Accent stripping per character: NFD (Hangul algorithmically) minus non-spacing marks.
        removed = {cp for lo, hi in t["strip_remove"] for cp in range(lo, hi + 1)}
        nfd: dict[int, str] = {int(k): "".join(map(chr, v)) for k, v in t["nfd_map"].items()}
        for s in range(_HANGUL_COUNT):
            jamo = [_HANGUL_L + s // (21 * 28), _HANGUL_V + (s % (21 * 28)) // 28]
            if s % 28:
                jamo.append(_HANGUL_T + s % 28)
            nfd[_HANGUL_S + s] = "".join(map(chr, jamo))
        strip = {k: "".join(x for x in v if ord(x) not in removed) for k, v in nfd.items()}
        strip.update(dict.fromkeys(removed, ""))
        self.nfd_table, self.removed = (nfd, removed) if strip_accents else ({}, set())

        table: dict[int, str | None] = {}
        if lowercase:
            table.update(lower)
        if strip_accents:
            table.update((k, low(v) or None) for k, v in strip.items())
        for cp in t["space"]:
            table[cp] = " "
        self.table = table
        self.space_table = {cp: " " for cp in t["space"]}

    def normalize(self, text: str) -> str:
        if text.isascii():
            if self.ascii_ctrl_re.search(text):
                text = text.translate(self.ascii_map)
            return text.lower() if self.lowercase else text
        text = self.drop_re.sub("", text)
        if self.chinese:  # " c " around each ideograph (join of a capturing split; faster than sub)
            text = " ".join(self.chinese_re.split(text))
        if self.strip_accents and self.reorder_re.search(text):
            text = self._strip_reordered(text.translate(self.space_table))
            return text.translate(self.lower_map) if self.lowercase else text
        return text.translate(self.table)

    def _strip_reordered(self, text: str) -> str:
        """NFD with canonical reordering, then drop non-spacing marks (the rare exact path).

        Only the relative order of surviving non-starters can change, and a stable sort of a run
        restricted to its survivors is the survivors' stable sort: removed non-starters can simply
        be skipped, while removed starters still end a run.
        """
        ccc, nfd, removed = self.ccc, self.nfd_table, self.removed
        out: list[str] = []
        run: list[tuple[int, str]] = []
        for c in text:
            for x in nfd.get(ord(c), c):
                cp = ord(x)
                k = ccc.get(cp, 0)
                if k:
                    if cp not in removed:
                        run.append((k, x))
                    continue
                if run:  # a starter ends the run of non-starters before it
                    out.extend(y for _, y in sorted(run, key=_first))
                    run = []
                if cp not in removed:
                    out.append(x)
        if run:
            out.extend(y for _, y in sorted(run, key=_first))
        return "".join(out)

    def words(self, text: str) -> list[str]:
        return self.word_re.findall(self.normalize(text))


@functools.lru_cache(maxsize=8)
def _charset(lowercase: bool, strip_accents: bool, chinese: bool) -> _Charset:
    return _Charset(lowercase, strip_accents, chinese)


# ----------------------------------------------------------------------------------------------
# Tokenizer


class WordPieceTokenizer:
    """Exact, dependency-free equivalent of HF's fast BERT tokenizer (see the module docstring)."""

    def __init__(
        self,
        vocab: list[str],
        *,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        max_length: int = 128,
        unk_token: str = "[UNK]",
        cls_token: str = "[CLS]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        mask_token: str | None = "[MASK]",
        max_input_chars_per_word: int = 100,
        never_split: list[str] | None = None,
        continuing_subword_prefix: str = "##",
    ):
        self.vocab = [str(t) for t in vocab]
        for tok in self.vocab:
            if "\n" in tok:
                raise ValueError(f"vocabulary token {tok!r} contains a newline")
        # Later duplicates win, as in HF's vocab loading.
        self.token_to_id: dict[str, int] = {tok: i for i, tok in enumerate(self.vocab)}
        if int(max_length) < 3:
            raise ValueError(f"max_length must be >= 3 ([CLS] a [SEP] b [SEP]), got {max_length}")
        if int(max_input_chars_per_word) < 1:
            raise ValueError("max_input_chars_per_word must be >= 1")
        if not continuing_subword_prefix:
            raise ValueError("continuing_subword_prefix must not be empty")
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = None if strip_accents is None else bool(strip_accents)
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.max_length = int(max_length)
        self.unk_token, self.cls_token, self.sep_token = unk_token, cls_token, sep_token
        self.pad_token, self.mask_token = pad_token, mask_token
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        self.never_split = list(dict.fromkeys(never_split or []))
        self.continuing_subword_prefix = continuing_subword_prefix

        specials = [unk_token, cls_token, sep_token, pad_token]
        specials += [mask_token] if mask_token is not None else []
        specials += self.never_split
        if not all(isinstance(t, str) and t for t in specials):
            raise ValueError(f"special / never_split tokens must be non-empty strings: {specials}")
        missing = [t for t in specials if t not in self.token_to_id]
        if missing:
            raise ValueError(f"special / never_split tokens missing from the vocabulary: {missing}")
        self.unk_id = self.token_to_id[unk_token]
        self.cls_id = self.token_to_id[cls_token]
        self.sep_id = self.token_to_id[sep_token]
        self.pad_id = self.token_to_id[pad_token]
        # Added tokens are matched leftmost-longest in the raw text; a regex alternation tries its
        # branches in order, so longest first gives leftmost-longest.
        added = sorted(set(specials), key=lambda s: (-len(s), s))
        self._added_re = re.compile("(" + "|".join(map(re.escape, added)) + ")")
        self._added_ids = {t: self.token_to_id[t] for t in added}

        # strip_accents None follows lower-casing (BERT's convention, as BertNormalizer does).
        strip = self.do_lower_case if self.strip_accents is None else self.strip_accents
        self._chars = _charset(self.do_lower_case, strip, self.tokenize_chinese_chars)
        n = len(continuing_subword_prefix)
        self._continuations = {
            t[n:]: i for t, i in self.token_to_id.items() if t.startswith(continuing_subword_prefix)
        }
        self._max_piece = max(map(len, [*self.token_to_id, *self._continuations, "x"]))
        self._cache: dict[str, tuple[int, ...]] = {}

    # -- persistence -------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """JSON-able settings: everything but the vocabulary (plus its size and digest)."""
        return {
            "format": FORMAT,
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "max_length": self.max_length,
            "unk_token": self.unk_token,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
            "mask_token": self.mask_token,
            "max_input_chars_per_word": self.max_input_chars_per_word,
            "never_split": list(self.never_split),
            "continuing_subword_prefix": self.continuing_subword_prefix,
            "vocab_size": len(self.vocab),
            "vocab_sha256": _vocab_digest(self.vocab),
        }

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / VOCAB_FILE).write_bytes(("\n".join(self.vocab) + "\n").encode("utf-8"))
        (path / SETTINGS_FILE).write_text(json.dumps(self.settings(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def from_dir(cls, path: str | Path, **overrides: Any) -> WordPieceTokenizer:
        """Load `path/vocab.txt` + `path/tokenizer_settings.json`; keyword arguments override settings.

        Unknown keys in the settings file are ignored (other components may keep options there).
        """
        path = Path(path)
        vocab = _read_vocab(path / VOCAB_FILE)
        settings_path = path / SETTINGS_FILE
        settings = json.loads(settings_path.read_text(encoding="utf-8")) if settings_path.exists() else {}
        fmt = settings.pop("format", FORMAT)
        if fmt != FORMAT:
            raise ValueError(f"{settings_path}: unsupported tokenizer settings format {fmt!r}")
        size, digest = settings.pop("vocab_size", None), settings.pop("vocab_sha256", None)
        if size is not None and size != len(vocab):
            raise ValueError(f"{path / VOCAB_FILE} has {len(vocab)} tokens, settings say {size}")
        if digest is not None and digest != _vocab_digest(vocab):
            raise ValueError(f"{path / VOCAB_FILE} does not match the vocab_sha256 in {settings_path}")
        settings.update(overrides)
        # Keys this class does not know (e.g. serving options such as "bucket") are left to the caller.
        known = inspect.signature(cls.__init__).parameters.keys() - {"self", "vocab"}
        return cls(vocab, **{k: v for k, v in settings.items() if k in known})

    # -- tokenization ------------------------------------------------------------------------

    def _wordpiece(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match-first; the whole word is [UNK] if any position has no match."""
        if len(word) > self.max_input_chars_per_word:
            return (self.unk_id,)
        vocab = self.token_to_id
        whole = vocab.get(word)
        if whole is not None:
            return (whole,)
        n, max_piece = len(word), self._max_piece
        lookup = vocab.get  # first piece: the token itself; then "##" pieces, keyed without "##"
        out: list[int] = []
        start = 0
        while start < n:
            end = start + max_piece
            if end > n:
                end = n
            while end > start:
                tid = lookup(word[start:end])
                if tid is not None:
                    break
                end -= 1
            else:
                return (self.unk_id,)
            out.append(tid)
            start = end
            lookup = self._continuations.get
        return tuple(out)

    def tokenize_ids(self, text: str) -> list[int]:
        """Token ids of one segment: no [CLS]/[SEP] template, no truncation (special tokens written
        in the text itself, e.g. "[MASK]", are matched as in HF)."""
        if not isinstance(text, str):
            raise TypeError(
                f"expected str, got {type(text).__name__}"
                + (
                    "; decode request bytes with serving.wordpiece.decode_utf8"
                    if isinstance(text, bytes)
                    else ""
                )
            )
        ids: list[int] = []
        cache, words = self._cache, self._chars.words
        parts = self._added_re.split(text) if text else [text]
        for i, part in enumerate(parts):
            if i % 2:
                ids.append(self._added_ids[part])
                continue
            if not part:
                continue
            for word in words(part):
                r = cache.get(word)
                if r is None:
                    if len(cache) >= _CACHE_LIMIT:
                        cache.clear()
                    r = cache[word] = self._wordpiece(word)
                ids.extend(r)
        return ids

    def tokenize(self, text: str) -> list[str]:
        """Token strings of one segment (for debugging)."""
        return [self.vocab[i] for i in self.tokenize_ids(text)]

    def _truncate_pair(self, a: list[int], b: list[int]) -> tuple[list[int], list[int]]:
        """tokenizers' LongestFirst truncation for a pair, verbatim."""
        budget = self.max_length - 3
        if len(a) + len(b) <= budget:
            return a, b
        n1, n2, swap = len(a), len(b), False
        if n1 > n2:
            n1, n2, swap = n2, n1, True
        n2 = n1 if n1 > budget else max(n1, budget - n1)
        if n1 + n2 > budget:
            n1 = budget // 2
            n2 = n1 + budget % 2
        if swap:
            n1, n2 = n2, n1
        return a[:n1], b[:n2]

    def encode(self, text: str, text_pair: str | None = None) -> tuple[list[int], list[int]]:
        """(input_ids, token_type_ids) with [CLS]/[SEP], truncated to max_length."""
        a = self.tokenize_ids(text)
        if text_pair is None:
            a = a[: self.max_length - 2]
            return [self.cls_id, *a, self.sep_id], [0] * (len(a) + 2)
        a, b = self._truncate_pair(a, self.tokenize_ids(text_pair))
        ids = [self.cls_id, *a, self.sep_id, *b, self.sep_id]
        return ids, [0] * (len(a) + 2) + [1] * (len(b) + 1)

    def padded_length(
        self, longest: int, *, pad_to_multiple_of: int | None = None, bucket: bool = False
    ) -> int:
        """Sequence length of a batch whose longest row has `longest` tokens."""
        seq = longest
        if bucket:
            seq = max(8, 1 << max(0, seq - 1).bit_length())
        if pad_to_multiple_of:
            if pad_to_multiple_of < 1:
                raise ValueError("pad_to_multiple_of must be >= 1")
            seq = -(-seq // pad_to_multiple_of) * pad_to_multiple_of
        return max(longest, min(seq, self.max_length))

    def encode_batch(
        self,
        texts: Sequence[str],
        pairs: Sequence[str | None] | None = None,
        *,
        pad_to_multiple_of: int | None = None,
        bucket: bool = False,
    ) -> dict[str, np.ndarray]:
        """Encode and right-pad a batch: int64 [batch, seq] input_ids / token_type_ids / attention_mask.

        seq is the longest row; `bucket=True` rounds it up to a power of two >= 8 and
        `pad_to_multiple_of` to a multiple, both capped at max_length.
        """
        if isinstance(texts, str | bytes):
            raise TypeError("encode_batch takes a sequence of strings, not a single string")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
        rows = [self.encode(t, None if pairs is None else pairs[i]) for i, t in enumerate(texts)]
        longest = max((len(ids) for ids, _ in rows), default=0)
        seq = self.padded_length(longest, pad_to_multiple_of=pad_to_multiple_of, bucket=bucket) if rows else 0
        input_ids = np.full((len(rows), seq), self.pad_id, dtype=np.int64)
        type_ids = np.zeros((len(rows), seq), dtype=np.int64)
        mask = np.zeros((len(rows), seq), dtype=np.int64)
        for i, (ids, tt) in enumerate(rows):
            n = len(ids)
            input_ids[i, :n] = ids
            type_ids[i, :n] = tt
            mask[i, :n] = 1
        return {"input_ids": input_ids, "token_type_ids": type_ids, "attention_mask": mask}

    def __repr__(self) -> str:
        s = self.settings()
        keys = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "max_length", "vocab_size")
        return "WordPieceTokenizer(" + ", ".join(f"{k}={s[k]!r}" for k in keys) + ")"


def _vocab_digest(vocab: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(vocab).encode("utf-8")).hexdigest()


def _read_vocab(path: Path) -> list[str]:
    """One token per line, as HF reads it ('\\n'-separated; a final newline ends the last line)."""
    lines = path.read_bytes().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


# Character tables derived from tokenizers (see export/tokenizer_export.py). Do not edit by hand.
_TABLES_BLOB = (
    "c-n2f-L5q;Zk~BBeY_Bq{-xZ?hrkG&9*i*)+h}Jpzy!Yc5&687syaT{+C`R@^p;8@DHTQiufP1`KmOxi{_~$dqtD-%^Owu>Uw(ha"
    "TtEBEB^$M#-&p0Bv)^0wXMb_8{p>HN?o|KH=TXl2q)p{tezH?#Q~lf<o0{j|`pvZBUVeTv*I)AMwy)>8v-6cCl(W>I{ROp4+<&=3"
    "&7b|nz5TnIqLi99b$(ZO4fWuv`*-b$du=~Kt8uUGock~C?PuM8w8Lz>_I7Z#U0+*~v+w8WR%UT(m)Uo#l<L%OmHij@_7nAX?(G_S"
    "KlgSGBg#x^1KG);>uxAdK(H^n(f59NexAhr-Hbaa_kR6(l5>W(^2#l*Sa~&_{JRl%GS2<oa67s6HLI`P`kK|(^1WYvo<x1k>i4#u"
    "&{qFx?R{zWTOxA&ND`#gZixz8Ka%2PH!Pk&8Wc+!q&<lx9nyeVG9V3?CBW(iYrmAVAPvS&^pM?P>?DJ#8;oxK+R0({4r@Y4t7s<~"
    "RKqITNe0!h=N<h#|FD|IZSP@aTjIFdZrPoj=5O}2mIP@}yOWY2E%#2m@1~yiT}$$Sw6@p@Z=$F2^CU0G`tyX6dul&VD7mNp^CU_h"
    "KTo_1@2mOq#QXQY+VFdh(Y7xQN6zt#JzLFr-23+PBMtVY{l47aTc5Th?pvR<q<E7K>yo3LCLPv6Mn7G0_)G60==Np(d2;R#qvxTA"
    "l{ZcoANGF7xaHXkwnX<$%6U?}qs_X1Zi%v+fJ#?NB@<ISDfhm0!dmbBW^}*zhtccYx5vG*ESWIdNxt{X&y#cC%5S%P8-XU*&i(mI"
    "SH>k1aOq09WFpR!xNm*Vl5^jlr{DUmxsiRMt^R)Nx1omoGkR+Z8)iph?aTTj$)ekjMEC8@Jmcmcc7I-aIz2AEALUu+ellf}O0;Lr"
    "{%E(nY~_)NHYGB~y>Cr5=Dlx4&F9>o_Nr$(_op?@toObZJ;%LoMOiW+y|~3F&3PF*OBSS+dmkp7#wHPMg|B|^TRrQ7UH)Fr?~4zE"
    "op{~FP+PK~tj*_X_%f~787g&OTALi>BG<Ja)DkbN?E&G5m*vvH62I5&6<Ff;Mzv?(iQgNhCoS=N(;D9rzc=l{EwOv$*<!^Lr_vrF"
    "o<QyX?a8c=^XJJjX;$o&dorBb@75FlWqr2Hv&5;krI061^*yS0vitv2p!3fY?rssZlRbJKFV{rMPB!hbyo}ukcCtsa>y2V#qPSV$"
    "?OE)>JUMjxd2;CS^8}-;tUbm(N!~a1W&L@Q{C(`p{_`Zc&@Rgq!?Mw*`-abwp!dMqNet|LY59kqZVfAaL~p3iw!%CCT}@jIc`~4i"
    "QPqE2^M2KyDDT=YW+x$H+S(SQC(Ehb%AOe2pWS&qaVqT&<q5ysN}>Eb!Mx~ZI(UNl(am=7MET8l@B}2i@4@Sd?)N>8J<<KK<*FxM"
    "y9xb1&QRZ%PRASTv+Ufn#OUj0w|0~FaeqtweofSFqTUnTU%N+mGMq9jmRQ~6*-F(DnevYfCQD?#+dvr4QL5wFVrQ6G^j~k2@kip+"
    "elf!=O~047Iwmoy*kCK;Oc}}s;7Ni?Mg`(w;$V~`Y=?=1QC2$lO&nMf_idI@AC+dq%oF9V+c@z=x$8DKc5+HL17!3!J%66)_hxu("
    "#ox~TZ25CP_jmIQH#FkD=U+0+huIvS<Rm)%#x*?lW&U}>^k!e~M(h2&ligE(o*dfhA7Se6ORN7Fd;8Mx-?p}n=t)dkc0=vtOpNMd"
    "Gn_5G6I3;7+`H3eLyzumyKmmMoYsu<w&m`Xc7GdX<le8}lXKU~&h<{MY&LaTcG@&#CnJ7sHJ3XPD~7Y=JE<|uJ3VIqHs8#~x74lA"
    "G|URxR@KR|n`}Rcrx{y#U#B0bCKLNQ|45mx*>(AmY67yat8=WExp|sxx?|}E>C&k`CZ76f$$h=sZKpY1&K@$B9{IN|hW@kk{Hi?L"
    "dM0(LSMp=DrJ^^^ou0|mo~BvNJB>HKud8#^E_>p(MF#1B-twH3`&(T6NTbXxGMsa38M_;iMlIth&Z##~@;oWMIG!h!%js5^rC#^$"
    "m^+83E**C-=s(hI3aan-y&3H}rnp@f=Ntjt%$&0{9TEJPRP;22blyscG&t6AExn@FHG`)iY}0-i(v!!exu=&?exyls{gIwhnwQ%!"
    "EKJ0k%r0jr*meJrh8W*+_(!^+tqf10=N^WnLC+tl1pjn;9YwQNu@XWl?pL{Api*d)(w^%6a(X?wpSIaR8p>q;lsa8ZGLed&KT`7B"
    "EL$nG=dUBmYmaH0_8d|6wB(%B4`=I`AL$a^e@anU&FZjpiB3PIuC$Upt*1+L{V8=io3!?n`^C!hH0bnGib~w`K2p@6%>zk|Ufa~("
    "NO#)3Z|tir$agxgSS!=yr~Wx-C6g`oFUw4GqQGl6*ZS#S&XLRJb@s2me%bluos1eG-kHG}G2yM7FDEZAp8>pyVskb7cP76!^DsHP"
    "|MfS|mR$C<<CSkcZn>^oo)HaRfAjclKJAoSvQ?)2@0dcH$hNd$|HjRieW}O)jsNmret-GL|MQ>z`LF->S6j(UTkh{4tmUTn{@>01"
    "+(x9Efu=sTIB32gP__ZSvu@Gs=Kj9$WydkI8|M3hg`ct}WmR8RS<TG)UF(1Q+rRv)Rr$DnutgNsd9)T{TF<NXH!-}3W)Ik^R$;2G"
    "!c^8GY;B<p)(LDP?-07pMJ!=ibn9NA&1`F*ds5}s`z6fXjx3Pcny5c|8^s=WKXP#aYV%J|ood;r=1A>-ajGCzwm$PTI&Y=(j_82R"
    "J5je9mo2Mo1JVD9-p{yfA;pKoMq>*dPo0e>@T=VlX%B&CSv&sU|MLI-^>6?1-~a1w%>VV5w58Q<)ctS&+^7sypej^@>QKX}WI0#M"
    "5Y2Dd05NJnJx~*BIhE6<=AyQoouG_doS^3HHE;A#4GJ8&Ls3~CP@u{aYC<h2sxJPdNw7+S0!hhGKq&<ZECnnHECnnHECnoj@B)?u"
    "mI9UpmI4+vL#5RR_0<GLeU*1GsIL|%>Z`nwL4B2GAJkWQKZE)zFJY)YUc%(r>w@Ch8(1b-8dxS+8dxS+8dxS+8dxS+8dxS+8dxS+"
    "8dxS+8dw%s8d%gLI#|>tI#|>vI#?E1I#?E1I#?E1I#?E1I#?E1I#?E1y7~)Py7~)P2L0s$%b>q7GE(MVPEhootb6pA+@R<od5Gd>"
    "p{H%SiPmocyXh)=h>p^x=q`GRR`~*5=yjV;qL*l(mi&k=qV*(0__FW~;frS*!k2|_2wyzy5WXyYL-^wPxt)b(3T+nJDYWOl&=#Sc"
    "LR*A(3T+YEDYQjsr_dImokClLb_#6~+9|X}XqWI6;akF2gl`F76}}~WRrr?hRpDF0SA}m0UlqP3d{y|C@Kxbk!dJmp;$@2xS*K{B"
    "txL4fwnwzkw)nl!BGfl6w5^C1+EzsiZEK>1wsp}$+k`d=UlYD0d`<Y`WkUrRC{?YJx=QLo?xLZqj~5pWqs3$Ukn88C0^J272GCHW"
    "#DE!U1Ro%636u|yuFhV3aI_UUyHjeM7zjfsL<Xf=rhe-ktqqmy-K-5YV|22>5S?m8Zne$Q6Go>&#3fWsQkSgiB=re8i!P$8=q9?0"
    "9-^mcm7bz_m6ueW1X@ihPXeqal_!B!lgiV}tNOWqEje2yo~k5m&2e9)>y1=N+bVHWC2y((O4W#|8Zxy+bt+H2uBzKr^}DLxQ}r6F"
    "-eXmE<&LI~wvLC1r-|$*ze?9|u2rS0=hmk3G(c-pc^Z(lMfEDLsXPt1+EktfSX8IG8bnotsCJd!Rk~DF?J8ZWX-~~WtMsnYrF!a6"
    "c~UiXs645bs$O14z)^V`F;ycb8Y3u`K2^F@L!ByJs-RAlF4147N|&gwQ{_pt*QN3#S{tT7Qq!yDn?z~D7})>2XiC?M(R)!tsvXsg"
    "YDG1o+E7iX7E}YO{nUJFJvE-%PEDtlQ^Tp<)KF?CHIrINjifeG6RCyNKx!W~k6K3}ND@c_Nb*PGN76^a2icPmHW^uy5j7b}lMyr-"
    "Ig@G7OnYX8Oh(3JL`+7)WCTn`zGTEpM!IB#OD@VexHqBv1!oMO?DLS6F>|udJyOP~$xJsgCQN36kugy+Q;Lj1k`W&n>5&m08QGDG"
    "u<%3(j*Q&M2#SoH$cTxIl*kB)jEu;P+02;DjET&c$n?=nAKm|WyL+OpC*GVEoE4ldj@n^!MsQ9!GdMXoD>y}*^#rE|Ck3YkCkLko"
    "rvzsNCot#0yaIC$%quXLz`O!;3Ct@nm%zLNv))b<nxLL|f>MJMPoOv0qQ`Dd4^BLR-fN3~+;W-0i6_w8Zqd72u1|2{3DgH#^!d%n"
    "!HFlRfjI@{8kkdHu7NoP<{Fq&V6K5V1?C!<Q(%t16=SL87MN3Djvl8{RI~D{4m}N}p=vUkCL<p+@=-IQjC|DmCnFy<+sVjB&22LB"
    "Q8Ss0eAK)pBOf(O$;d~|Niy<LbB>IB)C?mdA2pxI$Vbf{GV)P#g^YaE%pfBlH4n(hM_K(D`6wGdBOhhaXXK+S_JVwreO{1{vc?PY"
    "QMPwMKFZQA$Vb`L1^HNb|C&%1-n6EVg?FmSV!`y%)UaS`X(CuKv^4E2m|2?S6^txR=?W6D(AEV5tFQ=BSY(k6T#%N9MTo*8OW{2f"
    "WT))m!XiuItrR3_VG*LR$WnMm1-V*SgeWYs6y8`t$`%$O3X3d-_g9d)g+++MB1_?I79?=Nt}iUI$oekG<ARl6SY(kUUXad(MTo*8"
    "i>&g3tS&4<6c$-zp%)}m#quaDvdBI!jIoN{QCMV=tzH;$l|{0`B8%+y!uYE!k`)$NWW#IrR9Pe|EV9U+XC`G<Jrr2fvlywBrHjJK"
    "h3x#oxUDQ(_;8SBaFH*a-~&V2z{R}ufDaLA02l3&{XSSE^<A7J?-AWddW1GI9&wF4M^Gcl5z)wSgfr3`v5eeCAS1C6#mH)eFj5-v"
    "i+o1#BAF4n$Yg{q(iky|97dcXZxN(O+U$c68H<U6bj>~-vrok_R?uA82WIvuI3gE`i@-(RB5skk2wP+=q83SupheCiW|6W8S!66C"
    "772@hMZO|lk*)|=WGkW-$%<e_t|C^Est8qNDk2q$ia<r4B2JN}2vcM!q7+GrAVrQMMv<ZjQDmq@sJSyZZiFZ@6cLI9MSvndi@!gX"
    "--;_mmfDKHGnUngzbBT^ioY9{%Zi(kER7X6B3TA2ZbGuig@9xM3xUXD6#|fjDFhyiPzX2{oDgU%E+N2JNJ3z-XoP@bfe3-b@(%)t"
    "r5*$h%Q^@cmT(X#EY~1FSeij#u-JltDBhnC2*vvo0-$(*D&C)p_ow3hsd#@X-k*y1CstAl?}h#Z247G_e-vLlL|?FCf_^BIbr;X?"
    "{RxR*ygwn~wW8v(nDrFod0DLIc=_J98hyy+QBi&?hk0pnxzoLGv3AnEZ&jB&$mQy?rn@|4{iG-IcfTHfJ^Z@+wU_UGkM)x7dbWDs"
    ">)vOo_r0FUW96`7!g>j-C9ICHHp0qCcbQeaA6D;&)%#)heo|$l?dj?xk^)*!qO<78UPU+2UGxw=MFR&Fw2N19L&cAvRs2x#L&Xmj"
    "KUDls@k7NA6+cyc7OCQ=ik~Wes`#nmr;48{eyaGX;-`w&3P9G+mx^C1eyR8s_f`B-@k_-o6~9#cqIfO0G`*JoP`tX<{+~q`(N#3X"
    "cdbBVky>$}vuski&+RUHh@PSars(IoT?D2GOc9tOFh#`|6<<_*iQlXEqT;KHpCVO!Rq<8Dt6TP};;V|UD!!`ts^Y7PZz?`W72j06"
    "dU>IjYsI(4v#A#qdXd(Do1Ro_Fs<;Gv>M#>+#}X`Xmx!&X=(+n(X_%->(fb7n`q6ZX^85>NmG+(4X4#Ck`@^1t3!QtsITg?N>c+4"
    "_0^%iI@DLkiu+Zxo<n_gsILz7)uFx$rE9fFts*IUs-I5v)2V(spDucco}yKpT2!xkCXi1g=KinZlZsC&K1F^NpHzHO@sfyI?`pM+"
    "RPho?Gpl$F@~Lq%HEyQH&D6k{YKj?+p*OCMIW=yk`qtFAnd(hb<7TS=OpTja;`b_EeMIYXtxl0DUY%rW+)Tapsc|!-F*R;xz|**y"
    "8aMhp)()xSHEw28@lC}y72i~RQ}Ip3Hx=Jho_ctDM5=gcmnrQsrCszfu0`zwtu==_nvWm*uUF|KW}J>A<uIijw0zlG7OBdm9Hx}R"
    "lyaC-4pYiuYQRkmIDH9h(G+e%*nbu8W<-xps^K(O{8-pDoV1wQS``VFr6II5gqDWT(hyo2LQ6wvX$a{nWYcR|8bV7$XlV#7p<5b4"
    "D@A@4uOYNFgqDVo7JFOkB2~PG(8AJ4dX|js6O>y&ffL(9#>UE6LsOJh+DF`TD@)y0Ur}2N(#<Z}7|YibYKcy_G~||s+|rO+8gffR"
    "Zj~raPpcufG{%<3*wPqV8e>aiY^mQZjj<JAYrGsiO65`LC;H&q0<4d?vF#|4^s3b&cM+}T^!a{IaaT1*yJ+~WC|u)hX}m3sx25s6"
    "WX&yEb4%9Tk~Ozv&8=u@nQu$x+roT{Ugi^Z`|mH5cT{z)4oXFOVg3-l=+hAp{-UI_eZi-qR(*k|qC|Z`r~3zEzOM0YjW20@N8_tl"
    "rO9YOU3-}{7EPyXf6VR}+~(7@TUfO_PPdP0_j26YsJt?_C8~cru5LM0da&CG)xQ~6<QP&68HNNyU?HxMPRJ%C6LJZugiJyrA&*f1"
    "D1UT4njSrmmPf~<;dwcTAB2%#H#a()o16_P<T9t>aJ3uV7t0zRS4Q$HwBnvwJ&<}sOXW<F8FGm%PI_zjU}?Bu*{uqxp}fGrNZw?J"
    "EF$$=AzUC-kC}QdMtNZrwnu$v=}8&$n*?E5B0=c0K(zy%Y~KQ5O(JzSiv(dUB0)%}+$0EV6A8j9gb9RI2onga5GD{-Axt1_LX|+("
    "gerlm2~`4B6RHHNCR7PjO{fy6nowm>HKEF&YC@Gk)r2a8%KaVm>|F>m2)htw5OyKVAnZbz^;;p#AnZbzLD+?`fUpZ;0bv)y0>UnY"
    "1%yMW3aExq6;KVKDxexdRX{a_s(@+;RRPrystT$hR25W1s4A$2P*qS(Z#T-BLRdjKg|LEf3SkA|6he)rDTEb-QwXa{7QzO?DTED#"
    "QwSRfrw}#}E}?3mT0+%8wS=mHY6(>X)e@=(swGqnR7<EjsFqN5P%WYApjtxZ3aq)A(-<%55keQyn-oIVIGYqg7ux1PEOJ0r3d&Fo"
    "N_BK76+56*>V#6E3yLzc6O=*m{D$Jl!_U1P+@@lkq`5uCszY-z%pAYD&}D|+T*NZpZ7xKa%{CXA%w3xcNM@?d#Ub<3=E9FzXmjz#"
    "oU^$wV+Pp}T|Bi5DrPv%#S-&{=0XT-y}8K2IBqUrFh-k;6AZWJ!UM~Pg(jAnSY%>}sfD{D?``1s<nM*ih_DQ&L|&(lwdN~?O)G?s"
    "dt!okeLjvlo!bWyi$W|3u^_~95Q{-91+fs+v~p-zT@<<g>5Y}){olu?(N%O8-9$(JE_#X{qL=6i?E}>4C7PP~AZK(IokSPWS#%XG"
    "d`<YW@HOGf!q<c^3ttnyEPPG)vha1`%fi=%uLxfkz9M{G_=@m#;gjvhyEa<*y6_d@>%v!ruM1xhzAk)4_}l_>E#am?@AS6b`}2rS"
    "qLb(>I*Tr%i|8u4if*Et=q|d89-@cnDLU{h(F=MAUlP6{d`b9*@Fn3J!k2_^2wxJuA$&>rhVUif8^V`_ZwOx!z9D=`_@?k>;hVyj"
    "g>MR97QQKbS@@>#W#OB`mxXT%UlzV8d|CLW@MYnf!k2|_311PuC45ErmhctfTf$d_ZwX%!z9oD`_?GY$;akF2gl`F75xymS1$={^"
    "+sEjlhv*@Cik_mEX#KwOd}BVMljtNmi_W5p=pwp`uA-ahCR+HW@KxcP!dHcF3SSkzDSS=%mhd&<Tf*0bZwX%$z9oE3_?GZB;akGj"
    "gl`F76TT&UP53n4M-#p!d>a2#<9}%UPmTYf@jo^GhsOWZ_#YboQ{#VV{7;Slq47U8{)fi@)c7A7|5M|CX#7u&|Do|eHU5Xj|J3-`"
    "+DOM<F?xxnyt5#JB<w7Sblck~I*V3$NZw6n(N%O2-9%T>U33#YM0e4`r~bUuUzhstQh#0Qzf1jfssAqZ*QNfu)L)nS?^1tV>c30<"
    "b*cX@_1C5TyVPIT3_NNt_1~rby3~J{`s-5vUFxq({dcLqF7@A~{<_qEm-^>Ye_iUIOZ|1Je=hacrT)3pUzhslQh#0aPun>vI*S$_"
    "`r~-iKNtOR)80N-IVG{N#tWGeLUSH^h)$xX=q!4PF3`NxsX;I$gr)|;ln|O41XDt2Y7k5bp{YSIC4{C1!ITi18U#~9Xlf8l38763"
    "UlqP2d`<Y0@HOE}!q<c^311VwBz#TylJGU*OTyQLFAHB2zASuA__FXd;mg9;g)a+V7rrcfUHG!_b>Yjx*M%<&Ul+bCd|mj8@O9xU"
    "!q<hb2wxYzB78&mitr8LE5bK~uL$1|z9M`>_=@li;VZ&7gs%$U5WXsWL-?xj4dJW8H-)bX-xR(od{g+U@J->X!Z(Gl3f~mIDtuG;"
    "Fu$jS(3Fsy5<*i#Zb}GkdWs&RmuQ|xLT^e4O$ogzAv7iQri9Rx(3=uMQ$lY_2u%sSDIqi^^rqH^r-a^=P?{2YQ$lG<=uHWwDWNwd"
    "l%|B<lu()ydQ(DaO6W}qrA-T;`m2QCl#rSdf>T0jN(i#c&#Gd|=Te8St1fUx;$zqTKeFf~I__uDRdf;EL|4&WbQ3*9chOVy5WPfC"
    "Xn%o5FVP9Q3EvdHCVW%)n($5GYr;2$uL<82z9xKA_?qxd;cLP-g|7+U622yUOZd9*E#d3Jw}h_?-x9tqd`tMc@Gar%!ncI43*QpH"
    "E__S)I`~+EHF}8_zVV0_zL7*bJ~nqcG<J46D)yl5e~t;?)>@P;v8<z<eC0YhS$1+|G?<ESYC^H-<cer84X?%3&|nf?@dX=9!7H0J"
    "2NUp$XYFA6UGWqfOuj3Awxeh@J%L4w=?N@aOHW|YQhEZ5R?;(Aw2+>`qP6o3miVXw7Ok9TuxQ~tgGKA+87x{h&tTE2c?OFX%`;fE"
    "W?sOeCG!Fnt&$h8Xpy{tMQh{*ELtKjV9^SB0gD#M3s|&1UcjQ|@d6gDj#sc~alC>>YvUCxS{kol(aLxQix$Q!ShOx)!J>ulN_|@Q"
    "Zq%n`Z(o;TDT+>}-Pd-h?aqGbifjK%P#LN~Rj3Blp(w&<z5Aa-=!;Sq+<j3BL%A<XVc_;fDGbxTD1||(z0Q8=E2jHjg33?@szNoW"
    "4mF@A6s06eVSJ24DU67bD1|XF5~a}VN1_z^`N)()&mNgl=*uHh3cYt^N}<1wOeyrxQ7DBzISQrF3rC?8`W?3L{zoZ=Qs`UQx%(fb"
    "pkxO92OD<(qZAa#sFZ@b81xvd(fyB7Pz9q=3W9$$N<qwf^a-OVrBMnZd~`}dV2@5Ii09EM1z|ior677orxXP37?d(71ucrzHt>fX"
    "*l2@wiGf8nScMqaUxPJ=fweVQVHns}gY|@gB{f(*7<eiT)(QrWNrRPvfm_mG9bn*;G??`dT#^QJ{DDK#U`8+BC?AZIZp<uZ;EXhw"
    "vkY931~Zg_Bhp|#GH^p0%svKQM}xV>z~^W%vlw_B4dxL8f1|;yVc=~vm?I3Fiv}}-fosvg{vS9N4XpivThYL_A2<~aEct;CP}a}r"
    "jTp&8CJ!d@kb#2%JY>#b?hY9*7`H>F3VuC9h6!FhLuLp*JwrwZ9z8=Q2CfxD1_karL*@g{J4438q&LbmnDj;&0+Ze-wLj^Nlinzs"
    "ZqgfN!A*Lj>^1y*hO9H(d4_B;oOy;UFI;(s>?|C4hODYdZ<Gx+>5a0OCcRPi(WE!Z8p5Mz$o9dXXUNh~AP>K!H_F7puV=`h!K-KR"
    ">3HDNGx$_I@aP$Q8Xh?CjHNQ^jePnYIPVNT^$uKj2A_5Zjyr=-xdT6)!Kd4Sm(Ji*?Z7W*@Huwii8J{8I#_KQd~O}AEe$@e4px!|"
    "pHm0xMuX3%g9+2%>*-*+H28Qrm@Eyxoeri-gHNY}iPGT9>0p{P_;5PpAH#Rk!4zrm*>o^L8GNxEOiu<MEC-X5!S~9+)MW6vaxgI&"
    "e61WzO9me+x3B?c2PYn8EURq_oCBN#oOI(wcVt0rQ(&P}FFGfSX`2EIU3}5ynB#4VdsFwo$@E|?aMFzz-I2N7!1ZP@v)dFnnHH=C"
    "PVeG!-OPUJU2d|*wErzAvUvyG6ghos%Vf1_66j~L*0iYt)tqw6b~6XmfLc)0kg1_iW~R(aeTDie_loXOU!lHAeTDkG%WbMdQG20w"
    "?{b@(P+%!w8I;*6b5Lfd%t4u*G6!XL${dv0DRWR}SDCcupgjjqJ9yg3y~(}Fy~(}BvrnFV@$8dlU*MeJT;QDGT;QDGT;TNX5y2$<"
    "@*$f~;wB%rCy{U_AGarwa3&wOCy{U_AGar~hm()nlL`CQk`GjdN>J37xko2Ugm(%o#CLis^%3Cdsnq8ZY4T}(65nGhZfY+eYt&w7"
    "%tj4`#%$C;M<N2sWE=iwR;U6+4UKkbx<|V-?scBMQ+wyxJ7o@DSK}E5udDG4bSt*@Pqtt0d$jyi4Yd4JN1}$QjzkS~7Pjw4R0F$|"
    "7o=S(gn(aqQOKyNC<d-nHj&QOxrx`;WPgDCemxhT`nTSHpc+(y>QEVKKouwoWDGSI+Y=AJiEF^bt#MNciu!mdjWN`CDQp;-xDIUN"
    "11!80c8g402`1hEn*z%KO9RUQO9RUQ3nQ^H_7vg3F7Y<@dKF#3FC95U(;FY70xJR|LYv<`%Tk~-BeVrL`=v)ibCrhPN1-hrf2cDo"
    "0F)W}AN7IuM|mtCTd0oZq83jetN`4AR-(+|*OWQ^+CK#N@WL{{^=J8#27W)-2&mBIV-*F8wSfA>qZj3g-GJ)En-|521%Zpta<Pwp"
    "54Hr(J$$vovxhHK`0-#<;JCw=DZF;DE^yi5ixl6#_!@<Z=1UZve_y*ru>bptm(fXd5uHU>(M5C<T}5}%P4p1mMXPQ;wG?J0M*Gti"
    "KCu|RMDxr{#EcfckwgpM$fAXB6w$&rs%YUGO|<ZhE?W4;5G{N|_>%Aq;Y-3dg)a%;6uu;UQ}~kbP2o$zH-#?=-xR(id{g+6@J-=M"
    "!Z(F43*QvJEPPA&vhXe8%iv=S@mnS``~TFvrn+Vot-59tt-2=Ir}`2@-e}b|r)agsT%y$$OZBTSF}E;UZK1w7)t9FF=2Tyr>YFqA"
    "lKSS1zNEf6qc5p%&ge_(n=|^7`sP$$TI!oqeQBw0PW7dwzB$#Gmip#YUs~#$Q+;WvZ%*~4rM@}UmzMgb-yPKDs%Wtvaj~It5wU5p"
    "rE*gpDnSh>gsQJjE;d;%b|tMUA?vG?n?fYI8L(;y+6;wQbn9}l^>R}c3M>UI2x7d@HwBgg7Q$WPmA<M(a{-HlGt$3GJR|?B1T-3;"
    "N<^ar*vh#nupp-KX<uyZ+!R<4)p$`awt8*~EQo7jMlIedV}Q{~e`h4pw;6TxV@4Q#){Rd-_b?aX(++bFKI1Ugu<zFY{`<>6{~!PD"
    "h7lz~goTG5eZGQrI%m8?bv_m~yRTOe&c_10D-W?A9t#p2dGxD!N+#yRHp2F=>N}vN<q>BpjOBAUOP?6Fru|KYFVqHc4**X*xThVC"
    ";;%glq}c*dQrx<9P^YBz-+c3oQ@=`99MqKp(TR1o^F$P@qF`u;vmy}Q@(8yc$~bPcxH13kM*sU8gfM>M{`imYpWn~__<oN2>p#99"
    "i0kto->-@#rI4-rqJ4m8MQhs^{qJt9zyHPOiL%1Fy?*$2_tSs;`zT*w;QqJYzvD>l31+;xtamw1e^Ut-eD`n^xHVr+y?KbuQ`*fV"
    "j>6#-i!q%QNiHkA#{S<vTm_Y~qmnLHVRDL{aq{9SRMkiyu4)^f+D3$~`qZW{Iu?%n#hrJQ>nRmrr;Jbi3bbQKRlK>Xe}3v$;2k^B"
    ";>}g)EsuhIxa*Er)vrKQTNQos6>;;6t7wRuyFT3X;bw6u!H#=)=dB-Z<W<<Nr+xB{4>$5Iao^9SxQd6XybA7AQ~KmBA8!6c6}!Ey"
    "Mz$A6E!{qK*W2HfFT#-3&-1i93i>Nr*;B`hqvvR!7FGx-KNs%BRa<`gzTyt%`sw?MKA7vL@1LN@w|<R=`WX$1O_=LvG$=x0uAkAM"
    "IEDNFr+$rw`WX$1Qkd(f?<-c}{{N{>!P)ApAFley>>sZB$fxgDg_f%8gG|BEf~(%3aA<YCOHk-%*PDturV$bOf~%lnPx}12e7KQU"
    "p~Rm0$=g5N$g416&-mnBA8tf+yBa;eBD#TIvChiP6CAaD`=BWi?(9=<iI8WXHYySJY<;*wUfxnhA+hZspQvBMu+>k?DOmO$VG%Fw"
    "#Ze>Nv83SG{q}AJg?R3WR*-DBjcBC^l$|c8-aPtMyLtL64jXwC!)@F=>lK~N4i7oMQZVmh^C@D&)9+Kry<?r)wF#sRKihD@N|!~X"
    "LY(4Lf98u-Ubzx1f3|L?EGQQrjnk;>valCMez6c8qxQqXi~Jb0IFTPK5Fc`TP%>9`9pvXx?5fJP17p-+WEeywG)7UZHeYdbj)yyX"
    "6rbA|4F-|JjN!p@9tGtx#(*(T8U8`>VS9r!7K~FbL7tv*${0Y!6~P(AN2}-QXzQ{&Mh^~9SuJn|Q0Ku;T%QLQLT3P#kB`on3Nts)"
    "ZwQ-KS0Ev%)PrB4Gr-DsLT4yeoud94r;z154iTsxX2Z?^YZ}o;#HD)Jyy*<E@~zDoj<rvPGBytFii@8y2x9dxadHNM-q@Ap4DSMo"
    "wQXk<7^epi@G8zXFh+xMUKV1%uwBU+gB<JRm}11MA$nRwKV6mRGdU^Pq%jhVR)UemsKEfK;x8HlqzV~mj3&kkMu$;mFhI&4A!mS;"
    "pis_OVyMMBLD$}l^!E(j|2Bhra0)@jW?&~0n?+O(22ksH7==bGEBZ_)N?Sx2HpUbq9*=l!dzuiX60|M#c$uBZZHd)(XV9wcK+Uvj"
    "kA6oaA1mYJ0O~l{Gp#yq86d?^z!@OrL%uUWs<SpWqdb4l0O^X+ObDRODA7Wth!KSrkgn513NiiiIt&8)J^9o!lq24qoFAST?%fUg"
    "oKuOP)EHAyZRIn^I1N-4Zg4~sR>d4lCkKHC+4$%TkRBmQ#G#zqEn|ogz$!>bh>)%TkGuNdxH)B~k{*Vjp03(}%FY>Q0Ck=&)T$T("
    "qycq?c<%)9+LOO=IE10>>x{Fe$cYyk;S>3=X$-Vg(E%aGAdup7o)2wR(h(7g26;qPS3t<;bVQU@!9mj*L|9bFe`AclXP^N_KTm_U"
    "DmA28M_ZMaA_v;4w2=3mK!v59t|@J0U%i7v49M0_sZETNg9wd^u4xRgwi%CywyKItZ496i_re$`t8xVZ%F0ec3I<Snh~_>8b>x!;"
    "sPpui*&<6IL0f54zcUoRGM(Sh1J)TwD64vm4?GNw5%r?1YB>TAWmWl5=?sEfrt^MLRy9R@&yKRHDU2k%6D<V(`H5nt_VXr)iCgOt"
    "l4z@{XvwSMyJ(COj3h=622gW9j3N{7W&vx7HXDzksXn2<@qGMpJRD)kmqBdM5<+h%K<H&KbFW9|57rBJ$7%rujkOKL5R5}%L+b&j"
    "*rCU!8ANEVEmY@FL{TD*ID@dFEuV_P`a%NM7H<bfOq(P}4&tKM9?AyiOgkLlFhF{`D-N3$GB(ENKx5S-_VD7|bIRxZMiEeBcw(e)"
    "Mmp83zsrHfsz=)lG*(^b`O#SIIc1=+Dq9kqQOWT{qoT3ea|<OD<#P)iVjLU<T0LWcjZ;}s0*ryiYU%VDG*(lLYh!@4gsf%rluZ_+"
    "P}X2f)I_7AvRXZ_3YFE$86~K!Rzn)$qPiL9Jyf8!khQq2+Ho3T!?BIZB0vTbR8~8>lZ{lH5thPGjN-Y@Pk?%RRRpRH`Nd``3;Y-_"
    "Lg8z15OxM3i`N-5D6F<lXGUQ)z9c(?u3AdyUq1Nmd2>j#p$NF8pB#-)x$~6jBA}(PVfpB5ffWNP8cXpboZ(R0QG-L%tD~}qrdRXS"
    "G8C1!$EzA3&6nZvQ5BZT89x3;Ib#=n)yq0Lh8U+7;`%C<v@sTpP)~dTwz!LtV@g&j^0#r2RVfT1z5-|M9(RVq3ZH72Ty4D_4KfvM"
    "__QIbT(#D9ssZb<>i8JEtBJWHUxRZ$b2vT+TL{dk7k$;Q$VXpo$se_#uZ9kDGe#rC@fpq1SM3Sgc`&;g<pQAtlzD#RP)7~Hi<7dQ"
    "%Q6lpktO;Fp34@%aRvjd?KwFVaXH@2WO_A@jf#h}F;*~W)_yehRHXRXLgY;r*KB&DcElMvk25-_6jnb%9}np~&Ln)IujEwh4A72)"
    "mKoMqw^Y!sei+`catd^YVoCQ?%OXb@TzFjDPiim{j1rF*`f5b?oG7euBnhtBdFIn3=&PAeixA<y^?q^y^~_sw;kLMr2N}&e(rJ;R"
    "XxNtl)^=KiwMo-;@i=@mGDVex1K6HU7Ql`WP{fqnjOY9Wuzj5zbl5YtCMwJJ;EI9Dnj@xRY`!x_yiQb>wqH7<#L`Vv!z@cX{+xly"
    "GS937r*#Wx7*E5pn;|;o64*PRSB%nH`MhGLS-WFJ4wi<utq`ICmv@U57;S>mS|zOCDW$baNUf>h`m3FqQCq9^Q_6sG1{}+_{i)|C"
    "fbF6B@GIFlPVZyQ_RRq6IE{qXT7+M41~Jg*83t&rHBTR4p0(yWKN+lpwu3|Q(r=;CS}n8`E+*S1IbBVwu>18L4$;-0)AX8Xt$vyW"
    "#r53xhvI5+ER}JjV{5GX;cc=xSK=_&>g8rxFv1|h<75l&b{I*T>hz_fyUqY(wzX}u(-HUt+3sS=boI3hzCY?>oN~wCGl(YNjx^_k"
    "O|PN8*?O?&-!Z!+qUg>MrYGAGQg7ujiuBv*OpCT1=QR_x{F!0Tuy3I}>$E=8Eyb2`hO}2YV#w83xl54jYOn~&^>C6nVZq?>SmHoa"
    "V-Pq$M@9HS?wVsk4QI$=C!z$y!KU&Y20`}AEkj^ebc2QZYBfiP!+-M2NyP9EdCr!K)X(t1x6*<Tm-CxStpAwouL%A>PY&<3{TQG)"
    "Tv{yP=z+Lhmb)T`@8#CCG1zgy+&RW!Br)QVU4fN+WEuXL7VR~k-(VX)A>eV%Ojq~dpSg|tn}Z_=a;$dXskx<h*etkf?g?{PLhJ<D"
    "N-!TJxKV6QtO?@Fxqnm-1F*e>xrke5$!9`=Z>Jr_9Ci#Ip7v?slmgmudL*YH<PponIGF81W~`(Ugk*D8=xD-_>@FL^iZ~?pz3KG8"
    "%83p0bT7@jYR;#Wu)Cw7IAP%~EU>+$Y>^j_T=m82j15;|r97u|HJxA*(=N8Un2HXggm?hPxp|7Pg;lv)pbdRWRDjod1z`b<adHd}"
    "YUl?GXj?j^g7%oR?7Z2G^E|G@HX~Fr`)_ibU1y9!j&^cXF-{pEt^F`SdREgHI;_p3kcm*cvpnZFKyBycpu<W(gLD9OoS&e=N;^;o"
    "P{(;(G*~$b8Lzrh<`FOhsQokur&g2^@}JE^n-P<9_782wkp#F3v^he#F6pmzrmIW(Yp!xQENhL^O(ti5JU2%ZBOV9sRi7gbnSAY@"
    "mQKwa6p~`)V4=R+YO#EXr(haq3b)W-+N|mf!0z`LHA{i5D-SsuOM6qD0opT{!rQRaa)ziYuu|)J;x)yH#z%iu9W+TWFZ(b{9gQQ-"
    "_kF#K%}AV=qLyzQd%hXv<nTUG`#fdP%>6kz03K6>#_{OZoll{BQI1~I*nw5*kPdBZ!YXy9C<9eC;v-CBE0!&V=U`+pq6{=ykHfNz"
    "!-+0W3G8UH_Na4iMyHx_elo}*nb34-d#Nk1qsVrLKUp|0Y)hvWO~TsY)Cudx$YMk(9FWuM3?x~n&-8d4j?HN!#{;9u+R7&fy*IBJ"
    "4UH=6Pl^Y2Rkj%=p0DTtn|v7Fu05Y-M3ME<Ppj#CvTd(KJ!rC?Pouad+l+$*Mb>qm^imvRJL{~*^PtIk>*qIs?T3LP^8ky%N#eBV"
    "D4hN?p3^T-WFtNCK%5CQbY${UIO1f%3ZwB+WJ3qSF2y9?GOL_YCx`T`XcQFL(3!_ek%>3sj0;y}MLTt!0o3(GtD(kvUr)3WXAsSN"
    "x-e5Q#Ts%3r~K&5xurnGsSlmbw-l?`qM^j&p~hxg(IoohwPw_d8k_w*UYDI1OG*k=Y#;rPtl*>9iX~&kE8dJAZGs}3VN@t)v00Mi"
    "a2)JPr<*ey+epsfL6gmO`Yf94&B!p?VH8=YE7|~6W-h(K0IZI1Tnc1t@t@=MpvsocNM8zOY*CT}E2_-=(8WNNt$JQ4nruAtbPLyH"
    "Tc{so#4>)Ko5SOAJUW1ODW0(joKsDQvEq4&Y5e5#hH=r@!s9$IiflK0ye;XmoKGoIWI4VBD!}pP^n-;M$4@_vf+AbvJP&b>pT43$"
    "66yGfWtoU|{EXAmL_2=Q5s$<>eqtdmq8vX%CavNeZ)3D+ow$dt>*wq|C+9gbua6)5g*Y|OoX7e+2j@At&e?hHTK1gd^Nyz(C+LlG"
    "e%pdv=NvsF_1h6-KPTw9ljuD}ZyXpY1-Z^qdgH)ICCGFR)H~jtIA+gwikd;LbDG`^4=oPVo6%OBsW(r(Y;=o#02~4ABzL<=6*Yq7"
    "sJ<B_C9fd8D7L<>cnfkAPf?TH#8XryC-D?@5hZ8;tG`Sr-S8R@XT3~d8~Yyq%F^|9`?7i*hNp_hp{aPD!}6$j9hzELUEdSNTO{l2"
    "d*=3H@$ov37fW6NFL+CS0q<P$445w#->~aD*OD*5VO9A+#@o=YiqpW_Q*jzthp?XpMlU+e@B5+sxpDJIr)%hB@Y6Tiqc4Qzmsv8B"
    "TPrLAe#?6`oi3yk!%wFn^0zxV?@}@>KBM;jV)5N{4}rtN2lqT4sxu$>?T84npRSwFsgXUL_whMh;Y*Lh>AuSbL%dDbxMbqn+4IY+"
    "+hzG#_0%tmSe5~gZF6VXDY9j>O4kR<neXqLexMx8oZBp~9DE3z^Th(k^UBquCXT-xQEWRWVA|bD=B2xk3YB<BJdvM6*N~OorsEFJ"
    "d``>ku~|t6e?95YGj4OX<~q0AIa9N*XmsssN{0@y4U~DLiD+WFMeCtbpChS>m2#jkG4$K@oX<Hf6rI;O_jqLAppHrMUyy}8=$?f@"
    "dzp33_*FS)eU20&kySoBrRt~Co-)gPc0$!<X|LG%m1~L|kHTE@sfRu~i6cd|hTik9Ff+>Q2tZ|-@e6;nb>&|^hm4MB8=Z0Uv`e!D"
    "oa)ck$6+m4?Xoh3@b(ImDE){tK_5lGJ6S^W>IhQ@8BbYQ4SjmhDA%SoDtyR$#-UxEc8xwA4*kqavj|#uBc(Ra5vcnYQGhnO9eSuh"
    "4(Zgss2C|k#T%!5JVnxT=*Ddo##gs}`_Qp;_|w8O;qt~UADeg&&{vN9V(IwRdRbkp_GaB*&p=28<(MPh2g=bUqK`e|eV|-bQqMWA"
    "BV6cpa&-y^dZOr^J%fe)uI7RID;!K+*mG2DBhqEnlM7E|oov1PP!yCYSIrok3J+aXEsrSuR}bxx56US_r?ee<>NXut+A*vKqVdfb"
    "q&nz2oeoJbh!S<R62BJh&<;}KQS5(v0I@bx2tyGpPOW898mya@2RnVY=?GlUr-N`i^+okVzYyJz$;i>SSBKxDaOV*aI#Y8Ty2fqq"
    "3_7%O9J<GCA80zIavVC0S^7#pR>-)=>dqr2MnDVNp@m*8I;e6Ty2|(!d2NR0oX0!E%;rembw;grKAnEcPVgrrl(s<SLnqzVIleh="
    "L+hK*o<9F7o&bdpD|VjIW${&HZH$*iuKdcyfy%4Aa#hat-HM?Si>PRgd{3KyI^m{hQCuv}044_H7VDeUIWCw(j<#5TvDW>eSbQ8@"
    "^M#8w%(V`yK01BtNiP-?#OIZZfTvG-<zj_w&GSH&EyDX>`Bl7iYYNH3abW34o^_98v(6>*7^BdH{*6(|X1z5IS)`Ffo<p`pH&re2"
    "nA4(T&L(n3)uPX&t!o@<2Op;L;iXqL&Z`^wolU&*%0>k`OJ;m{?OmE5?xxdP$A@=}<%{DO%!f6f$kh%jMXt+ov}+!knbdRWu*^Vs"
    "Ei=&*Js+fY!3MoF$3_}d9T=GoozLy4Z<U+n@N|;XDV3G=dFUR-$9&G=awBFU?FoY|=o-d=P9i(Tz&yu^v3PNQaV9I5HKW}`uV^=D"
    "?H1{W#!2+#PqC?s^MDBCFb)};x;P;y#VWwOhdH^eP3B|Biw;9xxsM?aox^@4cRu!`=p47nUC!-x4u%@1?tCl_(J|hY`;2$dGgLmg"
    "*HQW9oG9hDIXvpv6QV=UDfiKH^PW3357Kh<+`LCoxkccoH<fWLf__e?a+MFcj?(Vukg5^dqSa&NL$^EFoV)|=oKn?e>7})D=1$`r"
    "T*YdVx_oQbg1fw9#ihf#mfYpd$VT1kWNGIFEN;gydb(K-FNf-dJhOYw?kG40m&O+%qw%%WDNhBj;B9PhDpbKKcv~`r;V<$Do;pRT"
    "$R&8|p$X0WI#t5n7yN;%JWPzve@ANr3#U32oPo<=517$S8;#;V8*OIbZEyc-qnSn#W!vb*9H8p=e2cC+B}y@$O2w6}E9R4Z%F^@m"
    "A$s8Q-4*j`&l`&B>vB`%*aXFVvZ=1{<Nm8v=&qPgrQrD374vD^TUqt9Y`^$A*-N<o5_GRC=2O;*XI(L$^5A=CSIj3nY*%=OK9JTZ"
    "k7eZ=?WIjB#3|~E`DCvne$O|?9C-1XYAO2Dly7=GFAMc0M}L`o3DvO*iun{9EqV!GU%ZgJVm{@G6Mk3Br>v+tT``~b`xtSb{-;yO"
    "6!XcpT?)_AzQm;W$!bCy(Oz=#ErD;T{T`Js4=G~x7~SPs5;UKeOW@Vl<?}xHxZL?1V(w^smch5#XzzbZXCD<EkN&W0-RSc2&@!4S"
    "HsKSEW+Ix-{Vq>}A)0S;I*Y34IQ0k5VxyV-w5Ts>51QWplma9+ywUh==~#|}Bk!K~uDGxEn^9hqLs`&W-&Q04;2WCSUp~B<4NpdE"
    "i&Rs6c<>G!6OCrUC`I{fkepTH5%1lSpD16xPbJ0u#tDGY9@-q4pC}JkqV>e@*&MwjfAHJgbhHPbifyyK=p;|7pcx-J%d6nAyTw5Y"
    "8u>gVpXILGvgDt<b&vePS=V-<MgFNx<B@;8_PT8vPhHz4EIP?0Rr%}NL(}N@u3e*XAzX)U+D;z7*RCST13Bm}9b;1Do@+s+MYCe7"
    "V^a#wx%+)Z|6p-85%bDuc0l%c-;ME6B@gk-EoB}Whkz>iDW6<9!FR=ZD{<DD;=JW?>7`vVs!zU5P4ana7fE}RzpMQuFXfE;r1N|2"
    "dar5^?ayB^UVChHh~E$S_vv}0KSEyOhP&T?^au3EDDl3B<X@COVgs@I<B<McdY++OZcp4tKA-1d*U0SW_uvctkKe6z`=~D_xXRCg"
    "wNH!sII;HWvNv$K-P$Y0t9FZoe8t_?#FL&Mccp&hDf*+P8TqwSEc(~frxoct9BpkUk?Kc(%o_3!{jqeGR?%wo(lJN{C)+JeqCeqc"
    "n{&u7^hd^v$7tkVm%TBiKb~kG^hZDM1N|}L`Ia``KN@dK`|d*?E^WK#Be&5-tLIs?ynEE1a;iP!1D{&c&rzN>1s+;^!el>bp<PGP"
    "n;J*{&A^)^Uz+l>6XZ!N?$iHHeW`xr6>hZl-L8rTpU&3QT92JsFZ}3_rDMtp9<&j5!o0tcFFJOr$bWVaC9uar(Tw+l_pA+@xR0;N"
    "Dsf-&HM-gxf1{M7ue8cEVm!%jc8eL|*FMFAmt7xElK#PGHa|VyPl>I{`aOFTOOO6g^yNzO32)h}FYuMk78Xu4uIPCLjs5b}ps`<c"
    "EL6cwcH8f=r*V?q;<(0r+OJ0YNq;2S^Ek-bhdMp4<{vt{wBQ{Zdw7i2&Y2YD@qXDGXf)qQ9?4TYW4FB&{Re-d-JtqC?nLW}{@E1j"
    "Bc6vZf9<pn`eUmdy+8EF!+FbHD}NS%ENJZK)80+)S<xSGBC7bY8m(QZ(LeBn?O_isZRQC5EI-(J-aq;yJyAdUBefLe57|#~pM7#k"
    "_7Mw^`+dawV((#`y;<;o%{o=VXzezM{)zYN6Y@{auek@FA?LwpFZ_ktd0#{0L-wT{U#HG?E%?3W6!sc!ue(14-l+%~Q6Kulf*6XX"
    "{buw}`Mc&APgCzV#xKX7KL@XTgmgA<S=wiK+86yXQ`~2tM#-`dadR!H%Kpd8wWQOZq(9~g8vD77_&wXTbnIV|e{1U@&vAQr!v2?c"
    ">z?2Ty%aFU>54OJgu^geJK;;*&$2h;e$keMDH{1q995%Z{#!+3zhwH47NyNSafn8~%yVBSa1Y%_e>BZs>!bMxKI>g8+F71qMk}gF"
    "Q+eozEPYV<tZL?>Xyyygc^>8qi|9v2%brXsA9<fRGoZ)vdD8r|%D>bi2#OxBeJw`QpGS@I*(`I~i}^z4TqUD%(B+&iqvhc`R6p{%"
    "udMo!*MsQnn@0XB_N388-$GO$_WS<1o}WXscCo5YPMvHuFnUN|718q*Ps-@^3I(<4_PnAx8J%9CgpAIwNJ2)JSIi%y6%;0(N8wAJ"
    "Xb-Lbr1N{lS&9CH{LOs{e~bB}?)P_u4WrX59D&gUf>`msdwE3(FuJ}r_#53`+scjZ+A<#HzqfxIJzrayjb5)!ti9s4Y2jN`Kk|3h"
    "7{8LgIAa@KwB1qVY5ix!cpkCCOZbNR>-oLx_p0_s{w5AxFj||tn((mxqs?AMC(-)-jD20gGi4vgctrkc6PMA9C!GpkaniJHQ^G&T"
    "+n%ntXqK=SD-N1P0SGpY{LRuI74OX0`D3)!r=q^4jV3YvR{cBry?4WC>948h!G3Q!`X};t&&P!i`@MDaUBxA{^rr=lCpqCDjLytw"
    "kl&jwpYcw}VbhO8H2Q0$C=cgh&ChF+{jT{y<(!UWJE6N6Y%D1OKmzuO`v}-424qSxffb-616Tu$SjHxxn`p&s>rwuE1sgMZy&{Qi"
    "S~0LreF}jk1Fa@Sz*-V8Ndd5Qu4(09kgEU^26|@4i_x)w9Q6$?Ku3O@24%o)8Ua!y5R&4E$Y9>I6x7u7V4zoaKN+paEb#&`(5nor"
    "N*LydTw*j6oYTH#d;}2DmCbuk_!K@Q1X7CVA@O?!4{3)+!T0#RLWgt-EPQyjK#TVw13jPo@30X@zoSMNt)LMt@MwY<?+XPH3ox5b"
    "Z-c*b2+KC`M$qN8b>8Uu5r`bc65H2}?jHe}Sm1fsm|^sMZ3j1+9oOu{-!uy17z7Cgq0Q4qBY?wzNPHl8o)~~#`<J79_Ni?;e&0U^"
    "M(WxN90QsK9&JlDdcC#=Z(6&oTf7fkn6zWpXasN#ycp<5pe79TG-Z$_c``lmK2Z=y;3gDAZqdKS{0P*fjcI4Rp&-hT!In@E+6rYf"
    "A6Qbf4+^3kd4z&E0+oYs%;84QgMv5)5r^T}0$7y)6~Jk(_X256C<tvCGCF+)GzvmHh>R{@0gZytejB4%fLhU?Q4k|X`z&pWS&?50"
    "0P((15J#Zr_&}iXho8NzV>QwFBk=LGk8K@B*N+0g*FJVm7~S6=;A&RPk1bca7&91=V?_uq6{#K5p+oV(Po|7T=hx<SqqPw|-Z_5w"
    "dnD^{@y%d!ks`1eL%Sd1DL8ZY(P`aPo~T<Y{!)!6!O3Cw9OJ1qv|BxuU#cT`>&4?O6m3~|UY|F!{50P;;ui$pu!zc0o18Dji+uIP"
    "o8l?3#d`C)f>6A9yqlHYJYLVrZ=Ql3l^0K8#8!Rtz`XjKS6(d{JO#ISV^;jI^~Q`lXM5h5@!@RG8y|c9Ja+TtDL6!X^NJ!Ny?OMN"
    "=Z!`2RnoiOtPl|Iw#s_@A1v$rLg8tvdV1q4>D8u9ynNrAdZv6jX_v!$VTQNl-I2zxb6!zrDRQ&ci-pHQPA?YT;kmq6IFjUcS%tFl"
    "tE|BWo$<U_?8+JW#iFcHU#tP^RlH8S-~WwCa7m-4xZ}-TV&0!mZ3i0bosqRl`)^#1lQgP{I}dj}_*mKh^xLV=K8)&bE{7dHI@#U6"
    "vHUE};?_5}1h;?ka+Wz(y#4RLo$7>jY<c@XF1OFK$w7xQpIr{^9^l-&{5S^j8r^ZL-6Ng5Ijrc2XO3XGbl3f)`iAbO*Rjv+(vp+X"
    "AXX!Lh7NDVCIr>H&Mt&tWHLm>@`!&fqbh@H)?sGPW%MXP^f)EF4wv>4RN^`%lzYfDTOs7vHO7<feu&G=?~FR3x_mOOdo;EA@I(!<"
    "yW%i<Wa!Z2Wa#$*>#oM+RL=3N>k4$3IM1I3RouoWUq+7o5E;6h-4FS70`}_%?QBYTABvshm5exA<T7TI0C;(k)x*GzES$TC0yaMN"
    "GUPGEsa<2_aG5#`?I?)$(Lp`!GS1eCeqKYqn<ZY%@InmwxFPoU3Ek~HUAg-a%InbX7Cmspp(&S9WB-AE(9Q;g@;chvGo06;t!?wm"
    "oXQv_ugD|@M=$r&v1&RQ%KL2a^K^1XTbEIlL2p|JWUR~JjOznl=T)rBn6Xz<KUimTTYH@|ejmT3vuC2bjvl{HB^UeWGHPVd58BC4"
    "UI&!R-%U^Ub$AQrd^^U`cV2F9mwA2Pt^jyBzrC3Gol$3^mrurZ4?~~NrFn=~hOP{1H@Vl}q1nSFGU($I8E2zEv5P_{r>C=xqTGYk"
    "$#6Q^xO**LOl`P`H!xzy#bLyji>UhSxd_G#A4*ldjuU0Mhqbe5<NRo*yL00*?*@#^d+oxw%zCQ4ymqU-%-BN_^w~rajN{=ctk=b}"
    "+%w|mZ4S9B-=WH}xb^f<IV<0xx@zo(K*X(fwnNl=xcs~#ZpChk!<dmlC9ad9+;ivI3lg0S-!E+lxy-vOBnANHleUIjri1R<O){n&"
    "qUU9FGMwY>hcX<-)GiN(k3u`9br>AndnA?uJEnCRXP*d|(%mQ`MvV-di=NuaAVw!cVA58Dbr}wF-XCzT$?0i$gw1)XM5E>BGLBEI"
    "esG;)#i+3Z<$-Qz3yK(>41o!4mh)vyWuV6?nqxj=7Pm08s2J&Vb5O<^V%oqn6wA?JiosIv89MlK^)rg`<yyBbYdEV9>a5|d9`rqf"
    "<h;?^&Q|ry>+gJkspFkby!px(b*xuD@vhhPb2{sFy?*iXdA{>1S~<^ndFMIm!Q9Ssym<Yc56pK%^NTlM`2zEL<rA+z?|fkH>77r!"
    "&vR6GpXU%SY*oF#er(lXoUOnDaQ6a>aW(_1=DQmh#yAG{eZAuv*e_;&XQW+5`D7HczA_5NYYX#>+20ujXM8e>c?|CRipMp$FLRzP"
    "wbU^0o?0=^c3IkQ-p#RM)Y!=)x}9w-VjN>eC0;{DjAO*ywwu?8xy<#vGtzb|eKLxfUl~=)D({TJtnZAp-D;nVV)pZtr|s6bPkNd2"
    "Z2P*n*WLRSOuW!e#tAQdGK!gB8Nt1t^3E8{`p%f(wNFMd@7A<<OY3><PrJ-e$w42LEJivi83^gBV=?mC=60SumAlvNGV41dPoCN*"
    "qnQ1bF=`p_jKQ4mj68W-pNue1Sd!P1=k&^Wn4tv)<!ZrTXjA9;LG0>0jI*s1jM9SXGG=5DwskVV;3#f8?2*M2oyYAAKyWBCISw*T"
    "118sD*5{Lx7l8&mImOJcoYNgI27YOg^Dx~INaf%|8#+U^_M78E88_Eu&QDH3S)ZIRT^&ZwfPy|$&cozM*1?B1bOyDydUG5o=t6Q`"
    "X8+_Al<~<4lcTMDM;5iB<D5ZR?C>PVsQ?W}uFI^SoT{LGa*D|j^y${R4ui5d(wZEn0?xH2*Jb8UPAcGp>yuN=`pOy2&Z)@Cd6@Ks"
    "`!3k#obJ2e$m{fd7wq^<-*>^`*XjE%SV&CYcfpbB${A2tQdG{v<VkK{W?`}2zRaP{?c0}GUTojK%#qLS+m~5nY~Q}jfza*SmpOO6"
    "efu)UMd$l|UB|(oRt}NQ-}mbZPPs0#e{u@S_~aCGzH%NY>y;Dc#8Gawc)t@*IT#a0zBvSC;xDIMmsvkK7tHp_DJJ;Ft#us+WpT=Q"
    "9-mq{Y&?%ot(-ZY$EQ|ytmg5ll~cxhJGFAqcyG7Xd2`$f*3EU8oIKv!r&bOi@9k47=aBceT%P#fMb5+Iu=#S}5J9VyZ_Vq&q!Pks"
    "mGUXCQ1gAar5pxj`MRNUoC<sbrd*fVKRH$F_~aCGzH%NY>y<N@=(ciu0eY?6UVu(3-(G-DE8kv#PAlJDfL<%#UVv^>&I4t<avtW<"
    "(oxCL&?*a^R@cdaKCA2II5IhM9C;i$js%MwM}kF;9z!T{jKffl({Cfk>9fj#cI&qcv|GPrptFwsz#Bnl9s5Dd{<U82jq$Z$?v1a#"
    "v+j+r&2w*z=WET}8|iD&+#C60Ux-;g_Jx@BYu(%%?Q7xO8((|q1@mhYy>85}wR3N*uf=n2%;%$%#Y`WaEaq3wzixbW{p&{kS_bz<"
    "`&tM0M*ms}_r~~I3HQeQ=xj09M`y!aUpwG+<7*4NZsf1!aBq~a^>A<0uLW^$w67I$Z}gAc5_5dymYDM^HSdk}m7H+{cgUCYyf@NU"
    "g5DeXD@E^(@|C3bM*YY&G22J3iP^tW_1+j?$$D?huXMdP)>p!w8|nE<*?S{>CGEX&<}bcZG;zs<kzv#;kMGYyLLElGLi#f2$)&>A"
    "Wt?33Oi=_OpXrGp<RfGdqxfaQSTI7koI+)PLJ+|A=otJgr60~uN{sr$xLV{sQ>iDH%4(N!bM=^Y2r)|gL}r}0TCTGmKJm3&XZ?HP"
    "Y-x-r)D`u9np-N-wBYDRB{+ev9!;m_tw+<TdF!#&Pdu54>*ZxqdJ79Y3UBF^>oAY?ts2|0zExv8*0*YF$MTMvJQPn_&&@I~M|oCo"
    "qUL_=L)F}mZK#_2u?t_%+RKMY>1gI2bBKwvB@F#6EZbB4c$IUQGmON*bWBNMLhF{>y~nXDg#|5}j|rI+O?lp*)WgtEK+E;KX2|JH"
    "BgAGf<~3Gc%zSczewNF)xoQ~xf`f*8^~-srU*tGaFLH#mJB9kFbw|O8=j8qeh(#}Vw_rYQsMtafK`*fo!OsihOZ<JiHSjpW@@eBb"
    "z2g+mu1{tw|E7CYPR^R%oO(D}dHUgakKg}Z9KNXa=W-f(W^jhSnVE}$I4+I%zkE4-)3Ohp;t;BDlyy0LIjiY#2wgS$!K^RD_HpoV"
    "8k}-D1I~F0zBKl9X)k3ymm|dU#qmY_=hE(jl`q{Xqh8K{bDlB2!=-sS3C_A4Z{eA5$v(B)|IQQ9S2pK9k@uL*8J7c|a`6=Kl#7S&"
    "5`$~7m5U8QJ?|Ug`^236)=S&YanbT2ectxx!-RR~21l!)GtbK*Pd;_wt~V`W>EVE<J(oi{GhYtn%u~DDa_+c3mmYD}dy^t(KwB(f"
    "Y*p<tXR&}`<Zv>5#1l*RSAlEU-uHpAT7Oj~EA>|~vPge*#k$KH(CPU|&vk7d(fNPVY+4#Vk%_e`Tp~{RYeAU&^*iI#GVqySY6bYr"
    "Cbjtc(J-;Zc<LBeS3&2`d{b+RXLhOO#D4Gd74ft&@_g{|`rm(l`PcvFpa1cHY}Ox(#kb$epDlUJk$AW5&tBSoTjl2`Z`olQzhoZR"
    "c8tNkvfNuM{rn7_{hspA-_^d_cc<SqKVoz9|1(W6E-&{fKaZ+wXJ|jaoiw|y$y{*FPt#5lG&fuOLgZ%++I8mITz8d!xT~w@ZwArb"
    "+x>*BeO)`()2^3acgxcY*WIoiVXwP<kJV)7AMO03dYQxAo!z6-_a6ST?;o~pN&T1o%ma%Nl7HFbY}lF8^_MI8t3{Kp=BMFDLH@Gu"
    "9d#G~U-6@C&7HseEb;46_q9Kl?PLGh=10HY^0Bzvyt&s~SV!9<X0dxLc%%7?Til-cvptS}-G*J;Z*AAc&$e3FwZ$W^9&hN69gXy>"
    "9{BN3Gna+t`x^f=(+kbF0PO4i0-GBZyEp7ty%TH0t=x7V-=?#r{eG_QF$3(n+I9EqYS*?E=TA5H_3p<d{po%7A1AB*>07w}`po{@"
    "Ehy~T@{Gqk7ySVAKU<^K-=L3;Y{S@(@cLsXPws2e@qb3y&oT;mihZE-Ej)j=UNA}M`FHUq-x_?^QQmI*p9v}3f$+ydhiv=8``(uP"
    "X2+UYv-_+WM!v1#k4dth$uH|08{+OLPx7~6fk={3lY7~Gx*tD{%R&uq=sTrPJ*KiPZBW+TcIy2T|8P4{P}Fpad%f)6S?ZKYi#?0V"
    "P}YDu^|z8Ntjf>iYl1Sr`&_(N+W%=3W#&@+UeOq@_PYWW3#Rk))TvhNo^O=+W5<l`4wtj2_N+~LY?MuP3;UUSP+RF%;^u5>`0qyb"
    "UTbI6{4Di8S**=0rMKp7AXz%0tiu+MZuG}|<c%uSV4Kc=p3=*kck?dF!kHHL(B4$vEnkUQv8mn9f0lw}cny9m)SpV|((0S5b`PFq"
    "cXK-k)hIjZ=4a`GGOzZge&5XRa;KS`CN(`3#k~n-WwxX;^X@&C7E#S8+ly(`%1$+>%Cm>fP6t%7-}!l=M(uZG2QgA+sl_SEEW>jS"
    "-5Y*y#67F8OzsV@&(EIxV*z7!&hA@HHf4JnJax)6tEWbdZZ%ly)O2c!GI{SQBY)V?PqQ-it(7KYrBCaTJ4L>118P6f^e9i8vRxaN"
    "dJAqPX?qj=T#`TL-EVskrpqz=pPlmGt<{WLts!5`EqSM+>?8J0C3{x+dFqt=1V0{Q!Kr1G_lfajb79{pr4+MQi2i3@{mp8aF8@Yy"
    "&yYkfA2!&2miq5fH4ns{TJITlV(QOQd%oSOTbEi|oHDD&Q>bl>St@Fea8F$pSn#nQ|9s>oJ9okU?UJ_g|Jz^x<!}G(uYWUbpKVxW"
    "WTEYruqJzW0+Ycm%eI^{h_qdIujwI4vdv&i8BM4c>6bkUecZLKHh#Q~DLXB1)kUjTb3A@L4#TE~dA~ir3C^kRl$VmqHc~xx4KVE3"
    "gFMjRwk_8L;6e}k#d6x;!M-r<VgE`<$PLN=^`NJV%%@6b+GZdVp+)qbRr$XjH2IOgcIZX^`M+sx{BQsIU;pv1W@7zpuaL!o-{!?u"
    "vnFJ0!fJ_mvYS1W%vmDY1koC1Cf{RWn<%V@?ZmXzW5#&##EfvCJ<P!aSatv7Z~yeK|M0iJ{`Y_RpH}N1pUV$vlx8Z#ueXS{O+{Rr"
    "$yTx1>WD3Ac5R!q{B6*0D&;hLK0i^|EI=~>3pSuB32C;mUr_Rs0_}SLcDN0h>{TV7h5HeJ`+8s@?g5p2gX<p)?6<GG|8{NbGhv<V"
    "Cm+A;hXPu(huvEr|Ly+Q_Vwg?`t{)2tTZ3Lw(oCSX0D?wvfwZKiLDle!H;ywT*m=5cD;Y=5l}3$jvdwF5^?{t-?}#4hD0_C&&%K4"
    "{bz|^udK68eADzV`_W>5Ts3Bo+Gf$*Hh$kQY8#(-`Lw4U^`Y}VJYvI-C;}dRY+o1h6yq0v#$Jt&CEACbIYOKCJ(Mi*Yioz@8YG*E"
    "k+EoZGi=Nr1;Va(p3%u;C%BC6?L4;9%!Bsavig_ZdDJ#LcO7ftM{NIyE@n|;HlFFyd|Mv7{7L&SYb!r-!y@DCcJ|}{Y?JdY$Il_P"
    "4b0O{nQ%*YTTQ>>!NKjYU_0>wE7`_&@yI%H$b)SXw(D-!%dfZE=kSMpZO0=pAF&8bKTG_&`>_cR*ETA#yg5!`z#n$1g12GGW^H>!"
    "8jIXuXBlL!_cIocv}qBm+OJ^oZ=JP&>l>>7STKJ@^tbC>j&Fpwh-YT~SFHbH)_=kJ-)e7nL->2l5-G$YXm0#iB^CtMt{sD|&Xhs>"
    "jA?w=U=~5_M-)Pj7WON=3kwKm*WwSmcAN?U@6TeEu0>j6c2Vux^Kaeyvxq`|z00)dGCtEVW6n3c|FQl47R9}Cy@kI=g85_n=<OQ5"
    "nPy2d6AJ{Nrt1z{rnL>wZXvoUnYgwX`5vLxu8r^Qx&IBj9@w7cN0it<c1G;aj)C=A$~KeiNK(JvIGabx+}HbEH>~+?GmV|N_IqrW"
    "@-Rzz%yjX{I{VsYEFP7{uD6Ndrx)97XW49r>;1lV;`z-G=-2_a>2sTng;|i9W`30CzHVktHeC<9W_Gm4RQC<@Hd8XQ3wzKE)y}MJ"
    "|JyUA!Ec9|HGYb-T|2*WJ<Jf}8Z(UiRwnkuE;*ZFg?(g39b>bv?mIFo*WC>)tS!sqeM5UJeb#My+{_^9a#Qma`^fx|A8B=0{}aCX"
    "kv~(`Pd4KRE2Fw0B>uANh4qns91y*AzU_m_K6BX?f?d0XvnPDrW_^yQSY3YD`o6YVVs$w@Y@80p>7L~7-&XHq!)EC_ah%=buX`WZ"
    "D$A~!Nmf(D<e#=eG0DGYTU$3*&ByH2EK3`6wQA;uM^m%8S~cTj9J}dpyQyfFm3)>(kKf(y=c#5=%$+oo+OOEsrkRutj=?A>kI#ra"
    "x}sCnsVZtY#f<2w%_x_?wnN(ITn{<T#IT*u<lLgzEV@TjX>Q-i+FO2a@w>Wb8lH-B+poraEW0I`p_b=d<TNE{X%}TUJwm8aqc}wk"
    "ZJKr2G>^08bWfSpReOex?Abcp?)A90MR>I^+RX8u;uJZDx7pAva$A;8X*THgD|*sqg-(IfVvqei6*Zljnl~1oH!}XS36IM9Lbp?6"
    "ZQfWkZ)`S?dyquk-ioJAWgBdkG6S=@%uc-&`vU&6bTO0K>dn$DY8u6?)jqZvg-ozdVooiMew#@Z%3P+1JcXJ*ydRBq``tnV*(@vh"
    "PU<S^?5j4)e>a)6E}t8&#r$?HuK^isb1$D|J<OIK8+JQIR+y1z>C}A8DaP|-D~XnBc4oVziRkInbc%UgvDv|+RiUT&K5a>er~1sz"
    "BP|)#o$8OM>Xgsip5{wY%s2P{<W%aCW6gJNYra%-?D=+TI5jmJbn)l<&~|a#EJicT<Qt(AYe@FLIHh@GG4YrRIkO4clr<MJb?B+)"
    "l*#9mNK#t`@D$2+m?zc*?0<Di_guIZA*;6Dyi>_wJ1}Ewa^35GuWP=Uvd=|3)bQD-&lW9!eEV5CV=kJQi=KH|VV>4RcWBmm?Lzd@"
    "yv-(1_OC#j?e71Wr}+cfKkD0)Toc3lU(2FxxjO4Pd@kI7{1d%=ZrmQtl|3*-jx{$6$Z7c-T58#<+w(JYyPxfe*Z=sJ|Ld>+{7?Vi"
    "U;p-R|L{L|@=yQr&wu&Pe|i2>F8`_g<=_8*WwT%u"
)
