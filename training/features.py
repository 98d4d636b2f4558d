"""Tokenised splits and the frozen-feature cache.

The trunk is frozen and identical for every task, so the hidden states it computes for a
data set at a given depth never change. They are computed once per (trunk weights, texts,
depth), kept in memory and on disk, and every partial fine-tuning and distillation run then
trains only its branch on them: the search over depths and student sizes costs a few
branch-sized trainings instead of full forward passes through the backbone.

Features are stored ragged: the hidden states of real tokens only, rows back to back, fp16, in a
`.npy` file that is memory-mapped when read. Padding is what made a padded cache large (SST-2's
67k rows average 13 tokens against a longest row of 66), so a data set ten times SST-2's fits
this machine's memory, and the operating system pages in only what a batch touches.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mtserve.core.tasks import Split
from mtserve.training.backbone import Trunk
from mtserve.training.device import CPU, Compute
from mtserve.training.progress import current


@dataclass
class Encoded:
    """A tokenised split, padded to its longest row; batches are trimmed to their own longest row."""

    input_ids: torch.Tensor  # [N, S] int64
    token_type_ids: torch.Tensor
    attention_mask: torch.Tensor
    key: str  # content hash: same texts + tokenizer settings -> same key

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def lengths(self) -> np.ndarray:
        return row_lengths(self.attention_mask)

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


def row_lengths(attention_mask: torch.Tensor) -> np.ndarray:
    """Each row's real tokens (the tokenizer pads on the right, so they are its first ones)."""
    return attention_mask.sum(1).numpy().astype(np.int64)


@dataclass
class Features:
    """A split's hidden states at one depth, ragged: `values[offsets[i]:offsets[i + 1]]` are row i's tokens."""

    values: (
        np.ndarray
    )  # [T, H] fp16: every row's real tokens, back to back (memory-mapped when read from disk)
    offsets: np.ndarray  # [N + 1] int64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden [B, W, H] fp32, attention_mask [B, W]) padded to the batch's longest row."""
        rows = np.asarray(idx, dtype=np.int64)
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        width = int((ends - starts).max())
        out = np.zeros((len(rows), width, self.values.shape[1]), dtype=np.float32)
        for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
            out[i, : b - a] = self.values[a:b]
        mask = torch.arange(width)[None, :] < torch.from_numpy(ends - starts)[:, None]
        return torch.from_numpy(out), mask.long()


@dataclass
class LiveFeatures:
    """Features computed on demand: the frozen trunk runs over every batch asked for. The search without the
    cache (`mtserve train --measure-uncached`), timed against the cached one: same batches, same training."""

    trunk: Trunk  # as deep as the branch point, its last output at that depth
    enc: Encoded
    comp: Compute = CPU

    def __len__(self) -> int:
        return len(self.enc)

    def lengths(self) -> np.ndarray:
        return self.enc.lengths()

    @torch.no_grad()
    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids, tt, mask = self.comp.to(*self.enc.batch(idx))
        with self.comp.autocast():  # the trunk moves to the device once (a no-op afterwards)
            return self.trunk.to(self.comp.device)(ids, tt, mask)[-1].float(), mask


@torch.no_grad()
def compute_hidden(
    trunk: Trunk,
    enc: Encoded,
    depths: list[int],
    batch_size: int = 64,
    desc: str = "trunk features",
    files: dict[int, Path] | None = None,
    comp: Compute = CPU,
) -> dict[int, Features]:
    """Run the frozen trunk once over a split; hidden states at each depth (a trunk deep enough for max(depths)).
    With `files`, each depth's values are written straight into that memory-mapped .npy file (nothing of the
    size of the split is held in memory)."""
    full = trunk.truncated(depths).to(comp.device)
    lengths = row_lengths(enc.attention_mask)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    h = trunk.embeddings.word_embeddings.embedding_dim
    shape = (int(offsets[-1]), h)
    out = {
        d: np.lib.format.open_memmap(files[d], mode="w+", dtype=np.float16, shape=shape)
        if files
        else np.zeros(shape, dtype=np.float16)
        for d in depths
    }
    # Longest rows first, batched by length: little padding, and the time left is pessimistic not optimistic.
    order = np.argsort(-lengths, kind="stable")
    passes = range(0, len(order), batch_size)
    for start in current().loop(passes, len(passes), desc, units=float(len(order) * max(depths))):
        idx = torch.from_numpy(order[start : start + batch_size])
        with comp.autocast():
            hidden = full(*comp.to(*enc.batch(idx)))
        for d, hs in zip(full.out_depths, hidden, strict=True):
            values = hs.to(torch.float16).cpu().numpy()
            for j, row in enumerate(idx.tolist()):
                out[d][offsets[row] : offsets[row + 1]] = values[j, : lengths[row]]
    full.cpu()  # it shares its layers with `trunk`, which stays on the CPU between stages
    for d in depths:
        if files:
            out[d].flush()
    return {d: Features(out[d], offsets) for d in depths}


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
        return self.root / f"{fp}-{key}-d{depth}.ragged.npy"

    def _read(self, path: Path, offsets: np.ndarray) -> Features | None:
        """A cache file, memory-mapped; None when it is unreadable or does not match the split's row lengths
        (a corrupt or half-written file is recomputed, never trusted)."""
        try:
            values = np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            return None
        if values.dtype != np.float16 or values.ndim != 2 or values.shape[0] != offsets[-1]:
            return None
        return Features(values, offsets)

    def get(
        self,
        trunk: Trunk,
        fingerprint: str,
        enc: Encoded,
        depths: list[int],
        desc: str = "trunk features",
        comp: Compute = CPU,
    ) -> dict[int, Features]:
        """Each depth's features of `enc`, from memory, disk, or one pass of the frozen trunk (run on `comp`:
        the values are the same up to the precision asked for)."""
        found: dict[int, Features] = {}
        missing = []
        offsets = np.concatenate([[0], np.cumsum(row_lengths(enc.attention_mask))]).astype(np.int64)
        for d in depths:
            k = (fingerprint, enc.key, d)
            if k in self._mem:
                found[d] = self._mem[k]
            elif (
                self.root is not None
                and self._path(*k).is_file()
                and (f := self._read(self._path(*k), offsets))
            ):
                found[d] = self._mem[k] = f
            else:
                missing.append(d)
        self.hits += len(depths) - len(missing)
        self.misses += len(missing)
        if missing:
            files = None
            if self.root is not None:  # written under a temporary name, renamed when complete
                self.root.mkdir(parents=True, exist_ok=True)
                files = {
                    d: self._path(fingerprint, enc.key, d).with_suffix(f".tmp-{os.getpid()}.npy")
                    for d in missing
                }
            computed = compute_hidden(trunk, enc, missing, desc=desc, files=files, comp=comp)
            for d, f in computed.items():
                k = (fingerprint, enc.key, d)
                if files is not None:  # complete: its final name, reopened read-only
                    files[d].replace(self._path(*k))
                    f = self._read(self._path(*k), offsets)
                self._mem[k] = found[d] = f
        return found


# Length bucketing: rows are shuffled, then sorted by length within windows of this many batches, so a batch
# holds rows of similar length (little padding) while every epoch still sees a different, random mix.
BUCKET_WINDOW = 50


def batches(
    n: int,
    batch_size: int,
    shuffle: bool,
    rng: np.random.Generator | None = None,
    lengths: np.ndarray | None = None,
):
    """Index batches over n rows. Shuffled: a random order; with `lengths`, grouped by length inside windows of
    BUCKET_WINDOW batches, the batches themselves in random order."""
    order = rng.permutation(n) if shuffle and rng is not None else np.arange(n)
    if lengths is None or not shuffle or rng is None:
        for start in range(0, n, batch_size):
            yield torch.from_numpy(order[start : start + batch_size])
        return
    window = batch_size * BUCKET_WINDOW
    groups = []
    for start in range(0, n, window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        groups += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    for g in rng.permutation(len(groups)):
        yield torch.from_numpy(groups[g])
