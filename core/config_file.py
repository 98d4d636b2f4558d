"""`--config FILE.yaml`: any setting of a command from a file, the command line winning.

    mtserve train --config configs/glue-minilm.yaml                # every setting from the file
    mtserve train --config configs/glue-minilm.yaml --seed 1       # the same, another seed

The file is a mapping of the command's own settings, named as their flags are (`lr-full`) or as their
destinations are (`lr_full`): `tasks: [cola, sst2]` or `tasks: cola,sst2`, `peer-baseline: true`. Its values
become the parser's defaults, converted and checked by the flag's own type and choices, so whatever the command
line gives wins, and a wrong key or value fails before anything runs, naming the file and the key (with a "did
you mean" for a key the command does not have). Relative paths in the file are read as the command line's are:
from the current directory.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path

from mtserve.core.errors import UserError

FLAG = "--config"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        FLAG,
        metavar="FILE.yaml",
        help="read any of this command's settings from a YAML mapping (keys as the flags, without --); "
        "flags given on the command line win",
    )


def _settings(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """dest -> action of every optional flag the command takes (help and --config themselves excluded)."""
    return {
        a.dest: a
        for a in parser._actions  # every action, those in argument groups included
        if a.option_strings and a.dest not in ("help", "config") and a.dest != argparse.SUPPRESS
    }


def _convert(action: argparse.Action, value, where: str):
    """The value as the flag would have parsed it from the command line."""
    if isinstance(action, argparse._StoreConstAction | argparse.BooleanOptionalAction):  # --x, --x/--no-x
        if not isinstance(value, bool):
            raise UserError(f"{where}: must be true or false, got {value!r}")
        if isinstance(action, argparse.BooleanOptionalAction):
            return value
        return action.const if value else action.default
    if value is None:
        return None
    # a list for --x a b, and for a flag given once per item (--utterances a --utterances b)
    if (
        action.nargs in ("+", "*")
        or isinstance(action.nargs, int)
        or isinstance(action, argparse._AppendAction)
    ):
        items = value if isinstance(value, list) else [value]
        return [_convert_one(action, v, where) for v in items]
    if isinstance(value, list):  # a list where the flag takes one comma-separated string: --tasks a,b
        value = ",".join(str(v) for v in value)
    return _convert_one(action, value, where)


def _convert_one(action: argparse.Action, value, where: str):
    text = str(value).lower() if isinstance(value, bool) else str(value)
    try:
        out = action.type(text) if action.type is not None else text
    except (argparse.ArgumentTypeError, TypeError, ValueError) as e:
        raise UserError(f"{where}: {e or f'not a valid value: {value!r}'}") from None
    if action.choices is not None and out not in action.choices:
        raise UserError(f"{where}: must be one of {', '.join(map(str, action.choices))}, got {value!r}")
    return out


def read_config_file(path: str | Path) -> dict:
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise UserError(f"{FLAG} {p}: cannot read it ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise UserError(f"{FLAG} {p}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(
            f"{FLAG} {p}: must be a mapping of settings (key: value), got a {type(data).__name__}"
        )
    return data


def apply_config_file(parser: argparse.ArgumentParser, argv: list[str], command: str) -> Path | None:
    """When `argv` names a --config file, set its settings as `parser`'s defaults. Returns the file, or None."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument(FLAG)
    given, _ = pre.parse_known_args(argv)
    if not given.config:
        return None
    path = Path(given.config)
    settings = _settings(parser)
    by_flag = {s.lstrip("-"): dest for dest, a in settings.items() for s in a.option_strings}
    defaults, problems = {}, []
    for key, value in read_config_file(path).items():
        name = str(key)
        dest = by_flag.get(name) or (name if name in settings else None)
        if dest is None:
            close = difflib.get_close_matches(name, sorted(by_flag), n=1)
            problems.append(
                f"{path}: unknown setting {name!r} for `mtserve {command}`"
                + (f" (did you mean {close[0]!r}?)" if close else "")
            )
            continue
        try:
            defaults[dest] = _convert(settings[dest], value, f"{path}: {name}")
        except UserError as e:
            problems.append(str(e))
    if problems:  # every problem of the file at once
        raise UserError("\n  ".join([f"{len(problems)} problem(s) in {path}:", *problems]))
    parser.set_defaults(**defaults)
    return path
