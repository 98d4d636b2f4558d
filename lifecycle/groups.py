"""`mtserve task group`: create, change, delete and list the task groups a repository serves (group_<g>, the
one-step wrapper around graph_<g>: the trunk segments up to the group's deepest task and the group's heads).

A group change is one registry revision with a history entry (action "group", the group's tasks before and after),
journaled and applied like a task change (lifecycle/apply.py), live with --server; it touches graph_<g>/ and
group_<g>/ and registry.json only. Configuration only: a serving host without torch changes groups.
"""

from __future__ import annotations

from pathlib import Path

from mtserve.core import names, registry
from mtserve.core.errors import UserError
from mtserve.lifecycle.apply import apply_change, repository_lock
from mtserve.lifecycle.plan import Change, cleanup, say, stage_dir
from mtserve.serving.model_control import connect


def parse_tasks(value: str) -> list[str]:
    """--tasks a,b,c -> [a, b, c] (order kept: it is the order of the group's outputs)."""
    return [t.strip() for t in value.split(",") if t.strip()]


def change_group(
    repo: str | Path, name: str, tasks: list[str] | None, *, server: str | None = None, log=say
) -> registry.Registry:
    """Serve group `name` with `tasks` (create it, or change its tasks), or delete it (`tasks` None). Returns the
    new registry."""
    repo = Path(repo)
    names.check_task_name(name, "group name")
    with repository_lock(repo, server, None, log):
        reg = registry.load(repo)
        before = reg.groups.get(name)
        groups_after = dict(reg.groups)
        if tasks is None:
            if before is None:
                raise UserError(
                    f"no group {name!r} in {repo} (groups: {', '.join(reg.groups) or 'none'}); nothing to delete"
                )
            del groups_after[name]
        else:
            problems = registry.validate_groups({name: tasks}, reg.tasks)
            if problems:
                raise UserError("; ".join(problems))
            if before == tasks:
                raise UserError(f"group {name!r} already serves {','.join(tasks)}: nothing to change")
            groups_after[name] = list(tasks)
        live = connect(server, reg)
        change = Change("group", name, None, None, stage_dir(repo), groups_after=groups_after)
        try:
            new_reg = apply_change(repo, reg, change, live, log)
        finally:
            cleanup(change, live)
        return new_reg


def group_rows(reg: registry.Registry) -> list[dict]:
    """Each group with what one utterance costs through it, in BERT layers (the registry's layer counts, as the
    client routes by them), and through the tasks' own paths one by one."""
    return [
        {
            "group": g,
            "model": names.group(g),
            "tasks": list(members),
            "layers": reg.layers_served(members),
            "layers_as_paths": sum(reg.layers_served([t]) for t in members),
        }
        for g, members in reg.groups.items()
    ]


def format_groups(reg: registry.Registry, only: str | None = None) -> str:
    rows = [r for r in group_rows(reg) if only is None or r["group"] == only]
    if only is not None and not rows:
        raise UserError(f"no group {only!r} (groups: {', '.join(reg.groups) or 'none'})")
    if not rows:
        return (
            f"no task groups (multitask: every task, {reg.layers_served()} layers); "
            "create one with `mtserve task group NAME --tasks a,b`"
        )
    width = max(len(r["group"]) for r in rows) + 2
    lines = [f"{'group':<{width}}{'layers':>6}  {'as paths':>8}  tasks"]
    for r in rows:
        lines.append(
            f"{r['group']:<{width}}{r['layers']:>6}  {r['layers_as_paths']:>8}  {','.join(r['tasks'])}"
        )
    lines.append(
        f"(layers: one utterance through group_<g>; as paths: through each task's path_<task>; "
        f"multitask, every task: {reg.layers_served()})"
    )
    return "\n".join(lines)
