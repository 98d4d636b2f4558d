"""`mtserve task`: add, retrain, remove or roll back ONE task of an existing run and repository, or change its
task groups, live.

A task owner changes their task without touching anyone else's:

    mtserve task add NAME (--train FILE --dev FILE [--pair] [--regression] | --spec TASKS.yaml)  [--server URL]
    mtserve task retrain NAME [--train FILE --dev FILE]                      [--server URL]
    mtserve task remove NAME                                                 [--server URL]
    mtserve task rollback NAME                                               [--server URL]
    mtserve task group [NAME] [--tasks A,B,... | --delete]                   [--server URL]
    mtserve task recover                                                     [--server URL]
    mtserve task list [--history] [--json]

Training runs the same steps as `mtserve train` (full fine-tuning, partial fine-tuning on the
cached frozen trunk, distillation, choice) for that task alone, on the run's frozen trunk (its
fingerprint must match the repository's). What changes in the repository:

  <task>/<v>/, config.pbtxt    the new head version; the config selects it with
                               version_policy { specific { versions: [v] } }
  full_<task>/<v>/, single_<task>/   the task's baseline, same version number (when the repository has baselines)
  trunk_<a>_<b>/               only if the task branches at a depth the trunk is not cut at yet: the segment
                               that depth falls in is split in two new segments, named by their layer ranges
                               (or one is added beyond the deepest); the split one is retired
  path_<task>/                 the task's path (new, or its config rewritten when its segments, outputs or
                               layer count change); every other path and group whose steps change likewise
  multitask/<m>/ + config      a new ensemble version for the new task set (and multitask_graph/<m>/)
  registry.json                the new entry, revision + 1, one history entry (before/after, what was archived)

A group change (`mtserve task group`) rewrites graph_<g>/ and group_<g>/ and registry.json only.

The repository holds exactly what is served. What a change retires (the previous head and baseline
versions, a split segment, the previous ensemble versions, a removed task's model folders and path, a
deleted group) is moved to the archive beside it, `<repo>.archive/r<rev>-<action>-<name>/...`, where
`rollback` finds it again. Every other file stays byte-identical. Inputs (registry, run, data files,
server) are validated before anything is written; new files are written under temporary names and
renamed; on any failure every change is undone (files and, with --server, the models already swapped),
so the repository and the server are as they were.

Killed half-way (SIGKILL, out of memory, power loss): before its first rename a change writes a journal
beside the repository, `.<repo>.mtserve-task.journal`, listing every step it will take. The next
`mtserve task` on that repository (or `mtserve task recover`) undoes the steps taken - or, when
registry.json (written last, the commit point) already holds the new registry, finishes what follows it -
puts the server back (with --server, or the server the journal names), and deletes the staging folders of
dead processes; a rerun of the change then completes it. Two changes of one repository at once: the second
fails at once with a clear error (a lock beside the repository), nothing is written.

Live (`--server URL`, a Triton in explicit model control mode on the same repository): after the files
are in place, each changed model is loaded in dependency order - new segments, head, baseline, the paths,
each group's graph and wrapper, then `multitask` last - each config written just before its load.
Triton's load of an already-loaded model brings the new version (or config) up while the old keeps
serving, then retires the old one when its in-flight requests are done, so no request fails. What a change
takes away (a removed task's models, a split segment, a deleted group) is unloaded only after the
ensembles that no longer use it are serving.
"""

from __future__ import annotations

import argparse
import json
import sys

from mtserve.core import names, registry
from mtserve.core.errors import UserError
from mtserve.core.options import add_dataclass_arguments, options
from mtserve.lifecycle.groups import change_group, format_groups, group_rows, parse_tasks
from mtserve.lifecycle.ops import (
    add_task,
    recover_change,
    remove_task,
    retrain_task,
    rollback_task,
)
from mtserve.lifecycle.run_context import TASK_TRAIN_OPTIONS
from mtserve.training.config import SearchConfig, TrainConfig


# ---------------------------------------------------------------- CLI
def _common(p: argparse.ArgumentParser, run_dir_default: str | None) -> None:
    p.add_argument("--repo", default="model_repository/multitask", help="the model repository to change")
    p.add_argument(
        "--run-dir",
        default=run_dir_default,
        help="the training run the repository was exported from"
        + ("" if run_dir_default else " (kept in step when given)"),
    )
    p.add_argument(
        "--server",
        metavar="URL",
        help="Triton gRPC address (explicit model control) serving --repo: swap the models live",
    )


def _training(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (default: the run's own settings, from its run.json)")
    add_dataclass_arguments(g, SearchConfig, inherit="the run's")
    add_dataclass_arguments(g, TrainConfig, only=TASK_TRAIN_OPTIONS, inherit="the run's")
    g.add_argument(
        "--max-train-examples",
        type=int,
        help="cap the training set (a seeded random sample, as mtserve train draws it; --seed)",
    )
    g.add_argument("--cache-dir", default="cache", help="feature cache folder ('' for memory only)")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser(
        "add",
        help="train a new task on the frozen trunk and deploy it",
        description="Train a new task (full fine-tuning, partial fine-tuning, distillation, choice) "
        "on the run's frozen trunk; add its head and a new multitask version.",
    )
    p.add_argument("name", help=f"task name, {names.TASK_NAME_RULE}")
    data = p.add_argument_group("the task's data: --train and --dev, or --spec")
    data.add_argument("--train", metavar="FILE", help="TSV with a header: text, [text_pair], label")
    data.add_argument("--dev", metavar="FILE", help="TSV, same columns")
    data.add_argument(
        "--spec",
        metavar="TASKS.yaml",
        help="a task file (as for `mtserve train --tasks-file`): its entry NAME",
    )
    p.add_argument("--pair", action="store_true", help="sentence-pair task (needs a text_pair column)")
    p.add_argument("--regression", action="store_true", help="labels are numbers; one float output")
    p.add_argument("--metric", help="accuracy (default), f1, mcc; pearson (default for regression), spearman")
    _common(p, "runs/latest")
    _training(p)

    p = sub.add_parser(
        "retrain",
        help="train a new version of one task",
        description="Train a new version of one task (on new data or the data it was added with) "
        "and deploy it; the previous version stays for rollback.",
    )
    p.add_argument("name")
    p.add_argument(
        "--train", metavar="FILE", help="new training TSV (default: the one the task was added with)"
    )
    p.add_argument("--dev", metavar="FILE", help="new dev TSV")
    _common(p, "runs/latest")
    _training(p)

    p = sub.add_parser(
        "remove",
        help="stop serving one task (archived for rollback)",
        description="Remove a task from multitask; its model folders move to the archive beside "
        "the repository (<repo>.archive/), from where `rollback` brings them back.",
    )
    p.add_argument("name")
    _common(p, None)

    p = sub.add_parser(
        "rollback",
        help="undo the task's latest change (repeat to go further back)",
        description="Undo the task's latest change not undone yet: a retrain goes back to the "
        "previous head version, an add removes the task, a remove restores it.",
    )
    p.add_argument("name")
    _common(p, None)

    p = sub.add_parser(
        "group",
        help="create, change, delete or list task groups (group_NAME)",
        description="A task group is served as group_NAME: one request for its tasks runs the trunk up to the "
        "deepest of them and their heads only; clients route to it by its layer cost. With --tasks: create the "
        "group or give it these tasks; --delete: stop serving it; neither: list the groups (or NAME's) with their "
        "layer cost. Each change is a registry revision with history, live with --server.",
    )
    p.add_argument("name", nargs="?", help=f"group name, {names.TASK_NAME_RULE}")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--tasks", metavar="A,B,...", help="the group's tasks (two or more deployed tasks)")
    what.add_argument("--delete", action="store_true", help="stop serving the group")
    p.add_argument("--json", action="store_true", help="list as JSON")
    _common(p, None)

    p = sub.add_parser(
        "recover",
        help="undo (or finish) a change that was killed half-way",
        description="A change killed half-way (SIGKILL, out of memory, power loss) left a journal beside the "
        "repository: undo it (or, past its commit point, finish it), put the server back with --server, and "
        "delete staging folders of dead processes. Every other action does this first by itself.",
    )
    _common(p, "runs/latest")

    p = sub.add_parser(
        "list",
        help="what the repository deploys (registry.json)",
        description="The deployed tasks, their branch depths, head versions, labels and metrics.",
    )
    p.add_argument("--repo", default="model_repository/multitask")
    p.add_argument("--history", action="store_true", help="also print every change")
    p.add_argument("--task", help="with --history: only this task's changes")
    p.add_argument("--json", action="store_true", help="print registry.json")


def _overrides(args) -> dict:
    """The settings given on the command line (None: the run's own), for RunContext.config."""
    given = [f.name for f in options(SearchConfig)] + list(TASK_TRAIN_OPTIONS) + ["max_train_examples"]
    return {name: getattr(args, name) for name in given}


def _summary(reg: registry.Registry, name: str) -> str:
    e = reg.tasks.get(name)
    where = f"revision {reg.revision}, multitask v{reg.multitask_version}, trunk v{reg.trunk.version}"
    if e is None:
        return f"{name}: not served ({where})"
    score = f"{e.metric} {e.dev_score:.4f}" if isinstance(e.dev_score, (int, float)) else ""
    return f"{name}: head v{e.head_version} at depth {e.branch_depth}, {score} ({where})"


def _group(args) -> int:
    if args.name is None and (args.tasks is not None or args.delete):
        raise UserError("name the group: `mtserve task group NAME --tasks a,b` or `... NAME --delete`")
    if args.tasks is None and not args.delete:  # list
        reg = registry.load(args.repo)
        rows = [r for r in group_rows(reg) if args.name is None or r["group"] == args.name]
        print(json.dumps(rows, indent=2) if args.json else format_groups(reg, args.name))
        return 0
    reg = change_group(
        args.repo, args.name, None if args.delete else parse_tasks(args.tasks), server=args.server
    )
    members = reg.groups.get(args.name)
    print(
        f"group {args.name}: "
        + (f"{','.join(members)}, {reg.layers_served(members)} layers" if members else "deleted")
        + f" (revision {reg.revision})"
        + (" - live on " + args.server if args.server else "")
    )
    return 0


def run(args) -> int:
    if args.action == "recover":
        outcome = recover_change(args.repo, server=args.server, run_dir=args.run_dir)
        print(f"recover: {outcome}" if outcome else f"recover: nothing to recover in {args.repo}")
        return 0
    if args.action == "list":
        if registry.journal_path(args.repo).exists():
            print(
                f"note: an unfinished `mtserve task` change left {registry.journal_path(args.repo)}: "
                f"`mtserve task recover --repo {args.repo}` (or any other change) undoes or finishes it",
                file=sys.stderr,
            )
        reg = registry.load(args.repo)
        if args.json:
            print(json.dumps(reg.to_dict(), indent=2))
            return 0
        print(registry.format_table(reg))
        if reg.groups:
            print()
            print(format_groups(reg))
        if args.history:
            print()
            print(registry.format_history(reg, args.task))
        return 0
    if args.action == "group":
        return _group(args)
    if args.action == "add":
        reg = add_task(
            args.repo,
            args.run_dir,
            args.name,
            args.train,
            args.dev,
            spec_file=args.spec,
            is_pair=args.pair,
            regression=args.regression,
            metric=args.metric,
            server=args.server,
            overrides=_overrides(args),
            cache_dir=args.cache_dir or None,
        )
    elif args.action == "retrain":
        reg = retrain_task(
            args.repo,
            args.run_dir,
            args.name,
            args.train,
            args.dev,
            server=args.server,
            overrides=_overrides(args),
            cache_dir=args.cache_dir or None,
        )
    elif args.action == "remove":
        reg = remove_task(args.repo, args.name, run_dir=args.run_dir, server=args.server)
    elif args.action == "rollback":
        reg = rollback_task(args.repo, args.name, run_dir=args.run_dir, server=args.server)
    else:  # argparse refuses anything else
        raise UserError(f"unknown action {args.action!r}")
    print(
        f"{args.action} {args.name}: "
        + _summary(reg, args.name)
        + (" - live on " + args.server if args.server else "")
    )
    return 0
