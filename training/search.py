"""What the search produces and how it chooses: one scored branch (Candidate, as search.json stores it), and
the choice per task and across tasks. Its settings are training/config.py's SearchConfig.

No torch here: reports, export and the task commands read search results without the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

from mtserve.core import registry

PARTIAL, DISTILLED = "partial", "distilled"


@dataclass(frozen=True)
class Candidate:
    """One branch the search trained and scored: the top k layers fine-tuned (partial, task_layers = k), or a
    student of task_layers < k layers distilled from that teacher; both branch at depth num_layers - k.

    Stored as a dict in search.json and beside each branch checkpoint (to_dict/from_dict keep that format:
    {kind, k, l, branch_depth, task_layers, score, seconds[, dev, meets_target, served]}; "l" is task_layers)."""

    kind: str  # PARTIAL or DISTILLED
    k: int
    task_layers: int
    branch_depth: int
    # what the choice compares: the score on the validation split (runs before validation splits: on dev), on
    # the fp16 feature cache
    score: float
    seconds: float | None = None  # its training time
    dev: float | None = None  # its dev score (rows the choice never saw), on the fp16 feature cache
    meets_target: bool | None = None  # the chosen branch only: whether it reaches retention_target x full
    served: float | None = None  # the chosen branch only: dev score through the fp32 trunk + branch (served)

    def __post_init__(self) -> None:
        if self.kind not in (PARTIAL, DISTILLED):
            raise ValueError(f"candidate kind must be {PARTIAL!r} or {DISTILLED!r}, got {self.kind!r}")

    @property
    def key(self) -> tuple[str, int, int]:
        return self.kind, self.k, self.task_layers

    @property
    def dev_score(self) -> float:
        """Its dev score as reports give it: through the served fp32 path where measured (the chosen branch), else
        on the feature cache; `score` for runs made before validation splits (it was the dev score then)."""
        return next(s for s in (self.served, self.dev, self.score) if s is not None)

    @property
    def name(self) -> str:
        return f"k{self.k}" if self.kind == PARTIAL else f"k{self.k}->l{self.task_layers}"

    def to_dict(self) -> dict:
        d = {
            "kind": self.kind,
            "k": self.k,
            "l": self.task_layers,
            "branch_depth": self.branch_depth,
            "task_layers": self.task_layers,
            "score": self.score,
        }
        optional = {
            "seconds": self.seconds,
            "dev": self.dev,
            "meets_target": self.meets_target,
            "served": self.served,
        }
        return d | {k: v for k, v in optional.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> Candidate:
        return cls(
            kind=d["kind"],
            k=d["k"],
            task_layers=d["l"],
            branch_depth=d["branch_depth"],
            score=d["score"],
            seconds=d.get("seconds"),
            dev=d.get("dev"),
            meets_target=d.get("meets_target"),
            served=d.get("served"),
        )


def _threshold(full_score: float, target: float) -> float:
    return target * full_score if full_score > 0 else full_score - abs(full_score) * (1 - target)


def choose(candidates: list[Candidate], full_score: float, target: float) -> tuple[Candidate, bool]:
    """Fewest task layers, then the deepest trunk, among those reaching target x full; else the best score."""
    threshold = _threshold(full_score, target)
    ok = [c for c in candidates if c.score >= threshold]
    if ok:
        return min(ok, key=lambda c: (c.task_layers, -c.branch_depth, -c.score)), True
    return max(candidates, key=lambda c: (c.score, -c.task_layers)), False


def trunk_layers(choices: dict[str, Candidate]) -> int:
    """The shared trunk serves every task's branch point: it is as deep as the deepest one."""
    return max(c.branch_depth for c in choices.values())


def layers_served(choices: dict[str, Candidate]) -> int:
    """The layers one utterance costs with these branches (registry.layers_served: trunk + task layers)."""
    return registry.layers_served(trunk_layers(choices), (c.task_layers for c in choices.values()))


def choose_jointly(
    searches: dict[str, tuple[list[Candidate], float]], target: float
) -> dict[str, tuple[Candidate, bool]]:
    """The choice for every task at once: the fewest layers served in all, each task reaching target x full.

    `searches` maps a task to (its candidates, its full fine-tuning score). A task none of whose candidates reaches
    its target keeps its best-scoring branch (as `choose` does), and its depth is a floor for the trunk. For each
    possible trunk depth D, every other task takes its fewest-layer candidate branching at <= D (the best score
    among equals): branching below D costs nothing more, since the trunk computes depth D anyway. The cheapest D
    wins; among equal costs, the highest summed retention."""
    if not searches:
        return {}
    fixed, ok = {}, {}
    for task, (cands, full) in searches.items():
        good = [c for c in cands if c.score >= _threshold(full, target)]
        if good:
            ok[task] = good
        else:
            fixed[task] = choose(cands, full, target)[0]
    floor = max((c.branch_depth for c in fixed.values()), default=0)
    depths = sorted({c.branch_depth for good in ok.values() for c in good} | {floor})
    best, best_key = None, None
    for depth in (d for d in depths if d >= floor):
        picks = dict(fixed)
        for task, good in ok.items():
            fit = [c for c in good if c.branch_depth <= depth]
            if not fit:
                break
            picks[task] = min(fit, key=lambda c: (c.task_layers, -c.score))
        else:
            retention = sum(c.score / searches[t][1] if searches[t][1] > 0 else 0.0 for t, c in picks.items())
            key = (layers_served(picks), -retention)
            if best_key is None or key < best_key:
                best, best_key = picks, key
    return {task: (best[task], task in ok) for task in searches}
