"""The model repository as the deployment sees it: what its registry says, and where it may be stored."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from mtserve.core import registry


@dataclass(frozen=True)
class RepositoryFacts:
    """What the deployment needs from a model repository's registry."""

    profile: str  # "gpu" (what the cluster serves) or "local"
    # task -> its per-task Triton model (single_<task>); None: exported without one
    baselines: dict[str, str | None]
    # group name -> its tasks, each group served as group_<name> (mtserve export --group)
    groups: dict[str, list[str]]


def repository_facts(repo: Path) -> RepositoryFacts:
    """The one place the k8s code reads registry.json: through registry.load, which validates it and checks
    it against the repository's folders (UserError naming every problem)."""
    reg = registry.load(repo)
    return RepositoryFacts(
        reg.profile,
        {task: entry.baseline for task, entry in reg.tasks.items()},
        {g: list(members) for g, members in reg.groups.items()},
    )


def uri_problem(uri: str) -> str | None:
    """What is wrong with a storageUri for the model repository, or None."""
    u = urlparse(uri)
    if u.scheme not in ("s3", "gs", "pvc", "https", "http", "hdfs", "webhdfs"):
        return f"{uri!r}: scheme must be s3://, gs://, pvc:// or https://"
    if not u.netloc:
        return f"{uri!r}: no bucket / claim name"
    if "@" in u.netloc or re.search(r"(sig|signature|token|key|credential)=", u.query, re.I):
        return f"{uri!r}: credentials in the URI; give them through the ServiceAccount or a Secret"
    return None
