"""Export a Hugging Face BERT (WordPiece) tokenizer to the serving-side pure-Python tokenizer.

`export_tokenizer` reads the settings of a HF BERT tokenizer (fast or slow) and writes
`vocab.txt` + `tokenizer_settings.json`, which `serving.wordpiece.WordPieceTokenizer.from_dir`
loads inside Triton's python backend (standard library + numpy only).

`derive_unicode_tables` / `encode_unicode_tables` regenerate the character tables embedded in
`serving/wordpiece.py` (`_TABLES_BLOB`). They are derived by probing the *installed*
`tokenizers` library (the reference implementation) on every Unicode code point, not from
Python's `unicodedata`: the Rust normalizer uses its own (older) category tables and a newer
lower-casing table, and Triton's Python may ship yet another Unicode version. Regenerate with

    python -m mtserve.export.tokenizer_export --print-tables

and paste the output over `_TABLES_BLOB`; tests/test_wordpiece.py checks that the embedded
tables equal freshly derived ones.
"""

from __future__ import annotations

import base64
import json
import sys
import unicodedata
import zlib
from pathlib import Path
from typing import Any

from mtserve.serving.wordpiece import WordPieceTokenizer

_HANGUL_S, _HANGUL_L, _HANGUL_V, _HANGUL_T = 0xAC00, 0x1100, 0x1161, 0x11A7
_HANGUL_COUNT = 19 * 21 * 28


def _hangul_nfd(cp: int) -> list[int]:
    s = cp - _HANGUL_S
    out = [_HANGUL_L + s // (21 * 28), _HANGUL_V + (s % (21 * 28)) // 28]
    if s % 28:
        out.append(_HANGUL_T + s % 28)
    return out


def _ranges(cps) -> list[list[int]]:
    """Sorted code points -> inclusive [start, end] ranges."""
    out: list[list[int]] = []
    for cp in sorted(cps):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def _ccc_runs(ccc: dict[int, int]) -> list[list[int]]:
    """Ranges of consecutive code points with the same combining class."""
    out: list[list[int]] = []
    for cp in sorted(ccc):
        if out and out[-1][1] == cp - 1 and ccc[out[-1][0]] == ccc[cp]:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def derive_unicode_tables() -> dict[str, Any]:
    """Probe the installed `tokenizers` BertNormalizer / BertPreTokenizer on every code point.

    Every step of the reference normalizer is per character (filter / map / NFD / to_lowercase),
    so probing each code point alone gives exact per-character tables. The only context-dependent
    step, canonical reordering inside NFD, is covered by the `ccc` table of the characters the
    reference treats as non-starters and the `reorder` set of characters that need it.
    """
    import tokenizers
    from tokenizers import normalizers, pre_tokenizers

    sep = "|"  # maps to itself in every configuration and is produced by no other character
    all_cps = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF and cp != ord(sep)]
    blocks = [all_cps[i : i + 0x20000] for i in range(0, len(all_cps), 0x20000)]  # bounded memory

    def probe(normalizer, chars: list[str], fmt: str = "{}") -> list[str]:
        out = normalizer.normalize_str(sep.join(fmt.format(c) for c in chars)).split(sep)
        if len(out) != len(chars):
            raise RuntimeError("probe separator was produced or removed by the normalizer")
        return out

    def bert(**kw):
        off = dict(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=False)
        return normalizers.BertNormalizer(**{**off, **kw})

    clean_n, chinese_n = bert(clean_text=True), bert(handle_chinese_chars=True)
    strip_n, lower_n, nfd_n = bert(strip_accents=True), bert(lowercase=True), normalizers.NFD()
    pre = pre_tokenizers.BertPreTokenizer()

    drop, space, chinese_cps, punct = [], [], [], [ord("|")]
    lower_map: dict[int, list[int]] = {}
    stripped: dict[int, str] = {}  # characters that accent stripping changes (removed: "")
    for cps in blocks:
        chars = [chr(cp) for cp in cps]
        for cp, c, o in zip(cps, chars, probe(clean_n, chars), strict=True):
            if o == "":
                drop.append(cp)
            elif o == " ":
                space.append(cp)
            elif o != c:
                raise RuntimeError(f"unexpected clean_text output for U+{cp:04X}: {o!r}")
        for cp, c, o in zip(cps, chars, probe(chinese_n, chars), strict=True):
            if o == f" {c} ":
                chinese_cps.append(cp)
            elif o != c:
                raise RuntimeError(f"unexpected handle_chinese_chars output for U+{cp:04X}: {o!r}")
        for cp, c, o in zip(cps, chars, probe(strip_n, chars), strict=True):
            if o != c:
                stripped[cp] = o
        for cp, c, o in zip(cps, chars, probe(lower_n, chars), strict=True):
            if o != c:
                lower_map[cp] = [ord(x) for x in o]
        # Punctuation: "a" between every probed character; a punctuation character comes out alone.
        words = pre.pre_tokenize_str("a" + "a".join(chars) + "a")
        punct += [ord(tok) for tok, _ in words if len(tok) == 1 and tok != "a"]
    if [tok for tok, _ in pre.pre_tokenize_str("a|a")] != ["a", "|", "a"]:
        raise RuntimeError("expected '|' to be punctuation")

    # Accent stripping is NFD, then dropping non-spacing marks ("removed" characters). Canonical
    # reordering is NFD's one context-dependent step. The reference's NFD tables are older than
    # Python's: find the characters *it* treats as non-starters (a non-starter moves past a
    # following ccc=1 mark, or a preceding ccc=240 mark moves past it). Their combining class is
    # Python's, since Unicode never changes an assigned canonical combining class.
    strip_remove = sorted(cp for cp, o in stripped.items() if o == "")
    removed = set(strip_remove)
    r1, r240 = "\u0334", "\u0345"
    nfd_map: dict[int, list[int]] = {}
    ccc: dict[int, int] = {}
    for cps in blocks:
        chars = [chr(cp) for cp in cps]
        decomposed = probe(nfd_n, chars)
        after, before = probe(nfd_n, chars, "a{}" + r1), probe(nfd_n, chars, "a" + r240 + "{}")
        for cp, c, d, x, y in zip(cps, chars, decomposed, after, before, strict=True):
            if stripped.get(cp, c) != "".join(x for x in d if ord(x) not in removed):
                raise RuntimeError(f"U+{cp:04X}: stripping is not NFD minus removed characters")
            if d != c:
                seq = [ord(x) for x in d]
                if _HANGUL_S <= cp < _HANGUL_S + _HANGUL_COUNT:
                    if seq != _hangul_nfd(cp):
                        raise RuntimeError(f"Hangul U+{cp:04X} does not decompose algorithmically: {d!r}")
                else:
                    nfd_map[cp] = seq
            elif x != f"a{c}{r1}" or y != f"a{r240}{c}":
                ccc[cp] = unicodedata.combining(c)
                if not ccc[cp]:
                    raise RuntimeError(f"U+{cp:04X} reorders in the reference but has ccc 0 in unicodedata")
    # Texts with a character whose stripped form keeps a non-starter need the exact (reordering)
    # path; all others are a plain per-character translation.
    reorder = {cp for cp in ccc if cp not in removed and cp not in stripped}
    reorder |= {cp for cp, o in stripped.items() if any(ord(x) in ccc for x in o)}

    return {
        "tokenizers_version": tokenizers.__version__,
        "drop": _ranges(drop),
        "space": space,
        "chinese": _ranges(chinese_cps),
        "punct": _ranges(sorted(punct)),
        "strip_remove": _ranges(strip_remove),
        "nfd_map": {str(k): v for k, v in sorted(nfd_map.items())},
        "lower_map": {str(k): v for k, v in sorted(lower_map.items())},
        "reorder": _ranges(sorted(reorder)),
        "ccc": [[lo, hi, ccc[lo]] for lo, hi in _ccc_runs(ccc)],
    }


def encode_unicode_tables(tables: dict[str, Any], width: int = 100) -> str:
    """The Python source of `_TABLES_BLOB` for serving/wordpiece.py (zlib + base85 of the JSON)."""
    raw = json.dumps(tables, separators=(",", ":"), sort_keys=True).encode()
    blob = base64.b85encode(zlib.compress(raw, 9)).decode("ascii")
    lines = [blob[i : i + width] for i in range(0, len(blob), width)]
    return "_TABLES_BLOB = (\n" + "".join(f'    "{line}"\n' for line in lines) + ")\n"


# ----------------------------------------------------------------------------------------------
# Export


def _backend_state(hf_tokenizer) -> dict[str, Any] | None:
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    return json.loads(backend.to_str())


def _not_wordpiece(hf_tokenizer, why: str) -> ValueError:
    return ValueError(
        f"{type(hf_tokenizer).__name__} is not a BERT WordPiece tokenizer ({why}); "
        "the serving tokenizer only implements BertNormalizer + BertPreTokenizer + WordPiece"
    )


def _fast_settings(hf_tokenizer, state: dict[str, Any]) -> dict[str, Any]:
    model = state.get("model") or {}
    if model.get("type") != "WordPiece":
        raise _not_wordpiece(hf_tokenizer, f"model type {model.get('type')!r}")
    norm = state.get("normalizer") or {}
    if norm.get("type") != "BertNormalizer":
        raise _not_wordpiece(hf_tokenizer, f"normalizer {norm.get('type')!r}")
    if not norm.get("clean_text", True):
        raise ValueError("BertNormalizer(clean_text=False) is not supported by the serving tokenizer")
    pre = state.get("pre_tokenizer") or {}
    if pre.get("type") != "BertPreTokenizer":
        raise _not_wordpiece(hf_tokenizer, f"pre-tokenizer {pre.get('type')!r}")

    cls_token, sep_token = _post_processor_tokens(hf_tokenizer, state.get("post_processor"))
    named = {
        "unk_token": model.get("unk_token", "[UNK]"),
        "cls_token": cls_token,
        "sep_token": sep_token,
        "pad_token": str(hf_tokenizer.pad_token) if hf_tokenizer.pad_token is not None else "[PAD]",
        "mask_token": str(hf_tokenizer.mask_token) if hf_tokenizer.mask_token is not None else None,
    }
    added_tokens = state.get("added_tokens") or []
    added = {tok["content"] for tok in added_tokens}
    if named["mask_token"] not in added:
        named["mask_token"] = None  # not matched in the text by HF either
    missing = [t for k, t in named.items() if t is not None and t not in added]
    if missing:
        raise ValueError(f"special tokens {missing} are not added tokens of the HF tokenizer: unsupported")
    never_split = []
    for tok in added_tokens:
        content = tok["content"]
        if tok.get("normalized") or tok.get("lstrip") or tok.get("rstrip") or tok.get("single_word"):
            raise ValueError(
                f"added token {content!r} uses normalized/lstrip/rstrip/single_word matching, "
                "which the serving tokenizer does not implement"
            )
        if content not in named.values():
            never_split.append(content)
    return {
        "do_lower_case": bool(norm.get("lowercase", True)),
        "strip_accents": norm.get("strip_accents"),
        "tokenize_chinese_chars": bool(norm.get("handle_chinese_chars", True)),
        "max_input_chars_per_word": int(model.get("max_input_chars_per_word", 100)),
        "continuing_subword_prefix": model.get("continuing_subword_prefix", "##"),
        "never_split": never_split,
        **named,
    }


def _post_processor_tokens(hf_tokenizer, post: dict[str, Any] | None) -> tuple[str, str]:
    """(cls, sep) of a BERT post-processor; anything but [CLS] A [SEP] (B [SEP]) is refused."""
    if post is None:
        raise _not_wordpiece(hf_tokenizer, "no post-processor adding [CLS]/[SEP]")
    if post.get("type") == "BertProcessing":
        return post["cls"][0], post["sep"][0]
    if post.get("type") != "TemplateProcessing":
        raise _not_wordpiece(hf_tokenizer, f"post-processor {post.get('type')!r}")

    def shape(template):
        return [
            ("S", p["SpecialToken"]["id"], p["SpecialToken"]["type_id"])
            if "SpecialToken" in p
            else (p["Sequence"]["id"], None, p["Sequence"]["type_id"])
            for p in template
        ]

    single, pair = shape(post["single"]), shape(post["pair"])
    try:
        cls_token, sep_token = single[0][1], single[2][1]
    except IndexError:
        raise _not_wordpiece(hf_tokenizer, "unexpected post-processor template") from None
    want_single = [("S", cls_token, 0), ("A", None, 0), ("S", sep_token, 0)]
    want_pair = want_single + [("B", None, 1), ("S", sep_token, 1)]
    if single != want_single or pair != want_pair:
        raise _not_wordpiece(hf_tokenizer, f"post-processor template {single} / {pair}")
    for tok in (cls_token, sep_token):
        ids = post["special_tokens"][tok]["ids"]
        if ids != [hf_tokenizer.convert_tokens_to_ids(tok)]:
            raise ValueError(f"post-processor maps {tok!r} to {ids}, the vocabulary does not")
    return cls_token, sep_token


def _slow_settings(hf_tokenizer) -> dict[str, Any]:
    basic = getattr(hf_tokenizer, "basic_tokenizer", None)
    wordpiece = getattr(hf_tokenizer, "wordpiece_tokenizer", None)
    if wordpiece is None or not hasattr(hf_tokenizer, "vocab"):
        raise _not_wordpiece(hf_tokenizer, "no WordPiece vocabulary")
    if not getattr(hf_tokenizer, "do_basic_tokenize", True) or basic is None:
        raise ValueError("do_basic_tokenize=False is not supported by the serving tokenizer")

    def attr(name, default):
        value = getattr(hf_tokenizer, name, None)
        return getattr(basic, name, default) if value is None else value

    named = {
        "unk_token": str(hf_tokenizer.unk_token),
        "cls_token": str(hf_tokenizer.cls_token),
        "sep_token": str(hf_tokenizer.sep_token),
        "pad_token": str(hf_tokenizer.pad_token),
        "mask_token": str(hf_tokenizer.mask_token) if hf_tokenizer.mask_token is not None else None,
    }
    extra = [str(t) for t in getattr(hf_tokenizer, "all_special_tokens", []) if str(t) not in named.values()]
    return {
        "do_lower_case": bool(attr("do_lower_case", True)),
        "strip_accents": basic.strip_accents,
        "tokenize_chinese_chars": bool(basic.tokenize_chinese_chars),
        "max_input_chars_per_word": int(getattr(wordpiece, "max_input_chars_per_word", 100)),
        "never_split": list(dict.fromkeys(extra)),
        **named,
    }


def tokenizer_settings(hf_tokenizer) -> dict[str, Any]:
    """WordPieceTokenizer keyword arguments equivalent to a HF BERT tokenizer (fast or slow).

    For a fast tokenizer the backend's own state (normalizer, model, post-processor, added tokens)
    is authoritative: it is what HF actually runs, whatever the Python attributes say.
    """
    state = _backend_state(hf_tokenizer)
    if state is not None:
        return _fast_settings(hf_tokenizer, state)
    return _slow_settings(hf_tokenizer)


def _vocab_list(hf_tokenizer) -> list[str]:
    vocab = hf_tokenizer.get_vocab()
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError("the tokenizer's vocabulary ids are not contiguous from 0")
    return [tok for tok, _ in by_id]


def export_tokenizer(hf_tokenizer, out_dir: str | Path, max_length: int) -> WordPieceTokenizer:
    """Write `vocab.txt` + `tokenizer_settings.json` for the serving tokenizer and return it.

    Raises ValueError for a tokenizer that is not a BERT WordPiece one (BPE, Unigram, a custom
    normalizer or template...), rather than exporting something that would tokenize differently.
    """
    settings = tokenizer_settings(hf_tokenizer)
    tok = WordPieceTokenizer(_vocab_list(hf_tokenizer), max_length=max_length, **settings)
    tok.save(out_dir)
    return tok


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["--print-tables"]:
        print("usage: python -m mtserve.export.tokenizer_export --print-tables", file=sys.stderr)
        return 2
    sys.stdout.write(encode_unicode_tables(derive_unicode_tables()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
