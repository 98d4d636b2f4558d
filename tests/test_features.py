"""The frozen-feature cache stores only real tokens (ragged, fp16, memory-mapped) and gives the same hidden states
as the trunk computed live; training batches group rows of similar length without losing any row."""

from __future__ import annotations

import numpy as np
import torch

from mtserve.training.backbone import make_trunk
from mtserve.training.features import (
    FeatureCache,
    LiveFeatures,
    batches,
    encode,
    row_lengths,
    trunk_fingerprint,
)


def test_ragged_cache_matches_the_live_trunk_and_holds_no_padding(tiny_backbone, tiny_data, tmp_path):
    bert, tok = tiny_backbone
    split = tiny_data["intent"].train
    enc = encode(tok, split, 32)
    trunk = make_trunk(bert, 4, [1, 3])
    fp = trunk_fingerprint(trunk)
    cache = FeatureCache(tmp_path)
    feats = cache.get(trunk, fp, enc, [1, 3])
    lengths = row_lengths(enc.attention_mask)
    assert lengths.max() > lengths.min()  # the check below means something: rows differ in length
    for d in (1, 3):
        f = feats[d]
        assert f.values.shape == (lengths.sum(), 32) and f.values.dtype == np.float16  # real tokens only
        assert isinstance(f.values, np.memmap)  # read back from disk, not held in memory
        live = LiveFeatures(make_trunk(bert, d, [d]), enc)
        idx = torch.tensor([0, 5, 17, 3])
        (h_cached, m_cached), (h_live, m_live) = f.batch(idx), live.batch(idx)
        assert torch.equal(m_cached, m_live)
        real = m_live.bool()
        torch.testing.assert_close(h_cached[real], h_live[real], atol=2e-2, rtol=1e-2)  # fp16 at rest
        assert (~real).any() and float(h_cached[~real].abs().max()) == 0.0  # padding is zeros
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and all(n.endswith(".ragged.npy") for n in files)  # no temporary file left

    # a second cache on the same folder reads the files (hits), and a corrupt file is recomputed, not trusted
    again = FeatureCache(tmp_path)
    again.get(trunk, fp, enc, [1, 3])
    assert (again.hits, again.misses) == (2, 0)
    victim = sorted(tmp_path.iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:100])
    third = FeatureCache(tmp_path)
    got = third.get(trunk, fp, enc, [1, 3])
    assert third.misses == 1 and all(g.values.shape[0] == lengths.sum() for g in got.values())


def test_length_bucketed_batches_cover_every_row_once_with_less_padding():
    rng_lengths = np.random.default_rng(1)
    n, size = 5000, 32
    lengths = rng_lengths.integers(3, 120, size=n)
    bucketed = [b.numpy() for b in batches(n, size, True, np.random.default_rng(0), lengths)]
    plain = [b.numpy() for b in batches(n, size, True, np.random.default_rng(0))]
    for got in (bucketed, plain):
        assert sorted(np.concatenate(got).tolist()) == list(range(n))  # every row exactly once
    pad = lambda bs: sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in bs)  # noqa: E731
    assert pad(bucketed) < 0.2 * pad(plain)
    # the order still changes from epoch to epoch: the first batches of two epochs differ
    other = [b.numpy() for b in batches(n, size, True, np.random.default_rng(1), lengths)]
    assert not np.array_equal(bucketed[0], other[0])
    assert len(bucketed) == len(
        plain
    )  # windows are whole batches (BUCKET_WINDOW of them): no extra short ones
