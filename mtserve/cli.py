"""`mtserve`: the one command-line entry point.

Each subcommand lives in the module that owns its stage; the module exposes
`configure(parser)` (adds its arguments) and `run(args) -> int`. Modules are
imported only when their subcommand runs, so `mtserve --help` stays fast and a
serving-only install never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mtserve.core import exit_codes
from mtserve.core.errors import Unreachable, UserError

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": (
        "mtserve.training.pipeline",
        "train, distil and choose each task's branch; write reports/accuracy.*",
    ),
    "export": (
        "mtserve.export.export",
        "export a trained run as a Triton model repository (or --check one)",
    ),
    "serve": ("mtserve.serving.triton", "run a real Triton server on a model repository in the foreground"),
    "predict": (
        "mtserve.serving.client",
        "send text to the multitask ensemble over gRPC and print every task",
    ),
    "loadtest": (
        "mtserve.loadtest.capacity_cli",
        "Locust capacity search: multitask against one deployment per task",
    ),
    "task": (
        "mtserve.lifecycle.cli",
        "add, retrain, remove or roll back one task of an existing repository",
    ),
    "k8s": ("mtserve.deploy.cli", "render, validate and upload KServe manifests"),
    "demo": (
        "mtserve.demo",
        "the whole pipeline on the embedded corpus: train, export, serve, load-test",
    ),
    "bench": ("mtserve.bench", "full capacity benchmark and the cost-vs-tasks sweep"),
    "gpu-check": (
        "mtserve.gpu_check",
        "on a GPU: time the trunk's segments, heads and served paths against the per-task models (skips without one)",
    ),
}


# Commands whose settings a --config FILE.yaml may give (core/config_file.py); the command line wins.
CONFIGURABLE = ("train", "export", "loadtest")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtserve", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # Only the chosen subcommand's module is imported (see main); argparse needs the
        # arguments of that one alone, so the rest are configured lazily.
        p.set_defaults(_configured=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The exit status (core/exit_codes.py, docs/exit-codes.md): 0 success, 1 a check or the SLO failed,
    2 usage (argparse's own exit for a bad flag, or a UserError), 3 unreachable server, 130 interrupted."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help or the error, and exits
        return exit_codes.USAGE
    name = argv[0]
    # Line by line into a file or a pipe too (nohup, CI, a Job's logs): what a command prints shows as it happens,
    # in order with its progress lines on stderr.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        module = importlib.import_module(COMMANDS[name][0])
        sub = argparse.ArgumentParser(prog=f"mtserve {name}", description=COMMANDS[name][1])
        module.configure(sub)
        if name in CONFIGURABLE:  # a bad --config file: a UserError naming the file and key (USAGE)
            from mtserve.core.config_file import add_config_argument, apply_config_file

            add_config_argument(sub)
            apply_config_file(sub, argv[1:], name)
        args = sub.parse_args(argv[1:])  # a bad flag: argparse prints it and exits 2 (USAGE)
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"mtserve {name}: interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED
    except Unreachable as e:
        print(f"mtserve {name}: error: {e}", file=sys.stderr)
        return exit_codes.UNREACHABLE
    except UserError as e:
        print(f"mtserve {name}: error: {e}", file=sys.stderr)
        return exit_codes.USAGE


if __name__ == "__main__":
    sys.exit(main())
