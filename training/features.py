"""Tokenised splits and the frozen-feature cache.

The trunk is frozen and identical for every task, so the hidden states it computes for a
data set at a given depth never change. They are computed once per (trunk weights, texts,
depth), kept in memory and on disk, and every partial fine-tuning and distillation run then
trains only its branch on them: the search over depths and student sizes costs a few
branch-sized trainings instead of full forward passes through the backbone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mtserve.training.backbone import Trunk
from mtserve.training.tasks import Split


@dataclass
class Encoded:
    """A tokenised split, padded to its longest row; batches are trimmed to their own longest row."""

    input_ids: torch.Tensor  # [N, S] int64
    token_type_ids: torch.Tensor
    attention_mask: torch.Tensor
    key: str  # content hash: same texts + tokenizer settings -> same key

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = self.attention_mask[idx]
        width = int(mask.sum(1).max())
        return self.input_ids[idx, :width], self.token_type_ids[idx, :width], mask[:, :width]


def encode(tokenizer, split: Split, max_length: int) -> Encoded:
    enc = tokenizer(
        split.texts,
        split.pairs,
        truncation=True,
        max_length=max_length,
        padding="longest",
        return_tensors="pt",
    )
    tt = enc.get("token_type_ids", torch.zeros_like(enc["input_ids"]))
    h = hashlib.sha256()
    h.update(enc["input_ids"].numpy().tobytes())
    h.update(tt.numpy().tobytes())
    h.update(enc["attention_mask"].numpy().tobytes())
    return Encoded(enc["input_ids"], tt, enc["attention_mask"], h.hexdigest()[:16])


def trunk_fingerprint(trunk: Trunk) -> str:
    """Hash of the trunk's weights: a cache entry is valid only for the exact frozen weights."""
    h = hashlib.sha256()
    for name, t in sorted(trunk.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass
class Features:
    hidden: torch.Tensor  # [N, S, H] (fp16 at rest)
    attention_mask: torch.Tensor  # [N, S]

    def __len__(self) -> int:
        return self.hidden.shape[0]

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = self.attention_mask[idx]
        width = int(mask.sum(1).max())
        return self.hidden[idx, :width].float(), mask[:, :width]


@dataclass
class LiveFeatures:
    """Features computed on demand: the frozen trunk runs over every batch asked for. The search without the
    cache (`mtserve train --measure-uncached`), timed against the cached one: same batches, same training."""

    trunk: Trunk  # as deep as the branch point, its last output at that depth
    enc: Encoded

    def __len__(self) -> int:
        return len(self.enc)

    @torch.no_grad()
    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids, tt, mask = self.enc.batch(idx)
        return self.trunk(ids, tt, mask)[-1], mask


@torch.no_grad()
def compute_hidden(
    trunk: Trunk, enc: Encoded, depths: list[int], batch_size: int = 64, desc: str = "trunk features"
) -> dict[int, Features]:
    """Run the frozen trunk once over a split; hidden states at each depth (a trunk deep enough for max(depths))."""
    full = trunk.truncated(depths)
    n, s = enc.input_ids.shape
    h = trunk.embeddings.word_embeddings.embedding_dim
    out = {d: torch.zeros((n, s, h), dtype=torch.float16) for d in depths}
    # Longest rows first, batched by length: little padding, and the tqdm estimate is pessimistic not optimistic.
    order = torch.argsort(enc.attention_mask.sum(1), descending=True)
    for start in tqdm(range(0, n, batch_size), desc=desc, leave=False, disable=None):
        idx = order[start : start + batch_size]
        ids, tt, mask = enc.batch(idx)
        hidden = full(ids, tt, mask)
        for d, hs in zip(full.out_depths, hidden, strict=True):
            out[d][idx, : hs.shape[1]] = hs.to(torch.float16)
    return {d: Features(out[d], enc.attention_mask) for d in depths}


class FeatureCache:
    """Hidden states per (trunk fingerprint, split key, depth), in memory and (optionally) on disk."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else None
        self._mem: dict[tuple[str, str, int], Features] = {}
        self.hits = 0
        self.misses = 0

    def clear_memory(self) -> None:
        self._mem.clear()

    def _path(self, fp: str, key: str, depth: int) -> Path:
        assert self.root is not None
        return self.root / f"{fp}-{key}-d{depth}.safetensors"

    def get(
        self, trunk: Trunk, fingerprint: str, enc: Encoded, depths: list[int], desc: str = "trunk features"
    ) -> dict[int, Features]:
        from safetensors.torch import load_file, save_file

        found: dict[int, Features] = {}
        missing = []
        for d in depths:
            k = (fingerprint, enc.key, d)
            if k in self._mem:
                found[d] = self._mem[k]
            elif self.root is not None and self._path(*k).is_file():
                try:
                    hidden = load_file(str(self._path(*k)))["hidden"]
                    found[d] = self._mem[k] = Features(hidden, enc.attention_mask)
                except Exception:  # a corrupt or half-written cache file is recomputed, never trusted
                    missing.append(d)
            else:
                missing.append(d)
        self.hits += len(depths) - len(missing)
        self.misses += len(missing)
        if missing:
            computed = compute_hidden(trunk, enc, missing, desc=desc)
            for d, f in computed.items():
                k = (fingerprint, enc.key, d)
                self._mem[k] = found[d] = f
                if self.root is not None:
                    self.root.mkdir(parents=True, exist_ok=True)
                    tmp = self._path(*k).with_suffix(".tmp")
                    save_file({"hidden": f.hidden.contiguous()}, str(tmp))
                    tmp.replace(self._path(*k))
        return found


def batches(n: int, batch_size: int, shuffle: bool, rng: np.random.Generator | None = None):
    order = rng.permutation(n) if shuffle and rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield torch.from_numpy(order[start : start + batch_size])
