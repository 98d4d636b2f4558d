"""The dataclass is the CLI: a settings dataclass declares each option once (its default, help and check) and
the command's argparse flags are generated from it, so no default, range or help text is written twice.

    @dataclass
    class TrainConfig(Options):
        lr_full: float = option(5e-5, "peak learning rate of full fine-tuning", check=POSITIVE)

    add_dataclass_arguments(parser, TrainConfig)        # --lr-full FLOAT (default: 5e-05)
    cfg = from_args(TrainConfig, parser.parse_args())   # TrainConfig(lr_full=...), checked

A check fails with a UserError naming the option's flag, whether the value came from the command line,
from Python, or from a stored run.json. The same declarations also make the options of another argparse-based
parser (Locust's, loadtest/locustfile.py), so a setting both tools take is declared once.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar

from mtserve.core.errors import UserError

Check = tuple[Callable[[Any], bool], str]  # (predicate, what the value must be: "must be > 0")
POSITIVE: Check = (lambda v: v > 0, "must be > 0")
NON_NEGATIVE: Check = (lambda v: v >= 0, "must be >= 0")


def option(
    default,
    help: str,
    *,
    flag: str | None = None,
    check: Check | None = None,
    choices: tuple | None = None,
    parse: Callable[[str], Any] | None = None,
    show: Callable[[Any], str] = str,
    metavar: str | None = None,
    repeat: bool = False,
    aliases: tuple[str, ...] = (),
):
    """A dataclass field that is also a command-line option.

    flag: the option's name on the command line (default: --field-name); check: (predicate, message);
    choices: the allowed values (checked, and listed by argparse); parse: str -> value, for types argparse
    cannot convert by itself (it raises ValueError with a message); show: value -> str, for the help text;
    repeat: a list[str] option given once per item (--x a --x b), the default when it is not given at all;
    aliases: further names of the flag (an older spelling a command line may still use)."""
    meta = {
        "help": help,
        "flag": flag,
        "check": check,
        "choices": choices,
        "parse": parse,
        "show": show,
        "metavar": metavar,
        "repeat": repeat,
        "aliases": aliases,
    }
    if isinstance(default, list | dict | set):  # a fresh copy per instance, as default_factory does
        return dataclasses.field(default_factory=lambda: copy.copy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def options(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


def flag(f: dataclasses.Field) -> str:
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


class Options:
    """Base of a settings dataclass made of `option` fields: checked on construction, stored as a dict."""

    # Keys an older stored config (run.json) may hold that are no options any more: read and dropped.
    RETIRED: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        for f in options(type(self)):
            value = getattr(self, f.name)
            choices, check = f.metadata["choices"], f.metadata["check"]
            if choices is not None and value not in choices:
                raise UserError(f"{flag(f)} must be one of {', '.join(map(str, choices))}, got {value!r}")
            if check is not None and not check[0](value):
                shown = f.metadata["show"](value) or repr(value)  # an empty --k shows as []
                raise UserError(f"{flag(f)} {check[1]}, got {shown}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        """From a stored config (run.json) or from flags; an unknown key is an error, not silently dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known - cls.RETIRED)
        if unknown:
            raise UserError(f"unknown {cls.__name__} setting(s) {unknown} (known: {sorted(known)})")
        return cls(**{k: v for k, v in values.items() if k in known})


def _is_switch(hint) -> bool:
    """A bool option (or bool | None: "unset" means the command decides) is a --x / --no-x switch."""
    return hint is bool or set(typing.get_args(hint)) == {bool, type(None)}


def _unset_allowed(hint):
    """X for an `X | None` option (None: not set, e.g. no --authority), else the hint itself."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return hint


def _arg_type(f: dataclasses.Field, hint) -> Callable[[str], Any]:
    parse = f.metadata["parse"]
    if parse is None:
        if f.metadata["repeat"]:
            return str
        hint = _unset_allowed(hint)
        if hint not in (int, float, str):
            raise TypeError(f"option {f.name}: a {hint} field needs option(parse=...)")
        return hint

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as e:  # argparse prints this message after the flag's name
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


class _Repeated(argparse._AppendAction):
    """--x a --x b -> [a, b]. Given on the command line, the flag replaces a default list (one a --config file
    set) rather than appending to it: the command line wins."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is self.default:
            setattr(namespace, self.dest, None)
        super().__call__(parser, namespace, values, option_string)


def _metavar(f: dataclasses.Field, hint) -> str:
    return "STR" if f.metadata["repeat"] else _unset_allowed(hint).__name__.upper()


def add_dataclass_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls,
    *,
    only: tuple[str, ...] | None = None,
    inherit: str | None = None,
    given_only: bool = False,
) -> None:
    """One flag per option of `cls` (or of those named in `only`), its value stored under the field's name.

    Defaults are the dataclass's own; with `inherit` (where the defaults come from instead, e.g. "the run's"),
    a flag not given is None, for the caller to merge over the inherited settings (mtserve task). With
    `given_only` too, but the help shows the dataclass's defaults: for a caller that lays the given flags over
    a preset (`mtserve loadtest --short`; `given` reads them)."""
    hints = typing.get_type_hints(cls)
    unknown = set(only or ()) - {f.name for f in options(cls)}
    if unknown:  # a typo here would silently drop a flag
        raise ValueError(f"{cls.__name__} has no option(s) {sorted(unknown)}")
    for f in options(cls):
        if only is not None and f.name not in only:
            continue
        m = f.metadata
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        names = (flag(f), *m["aliases"])
        # repeat: argparse appends to a default list, so the default is None and from_args supplies it
        unset = bool(inherit) or given_only or m["repeat"]
        shown = f"{m['help']} (default: {inherit or m['show'](default)})"
        if _is_switch(hints[f.name]):
            parser.add_argument(
                *names,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None if unset else default,
                help=shown,
            )
            continue
        parser.add_argument(
            *names,
            dest=f.name,
            action=_Repeated if m["repeat"] else "store",
            type=_arg_type(f, hints[f.name]),
            choices=m["choices"],
            default=None if unset else default,
            metavar=m["metavar"] or (None if m["choices"] else _metavar(f, hints[f.name])),
            help=shown,
        )


def given(cls, args: argparse.Namespace) -> dict:
    """The options of `cls` that `args` sets (not None): for flags added with `given_only` or `inherit`."""
    return {f.name: getattr(args, f.name) for f in options(cls) if getattr(args, f.name, None) is not None}


def from_args(cls, args: argparse.Namespace, base: dict | None = None):
    """`cls` from the flags `add_dataclass_arguments(parser, cls)` added, laid over `base` (a preset); checked
    as any construction is. A flag left None (not given where the parser's default is None) takes the
    default."""
    return cls.from_dict({**(base or {}), **given(cls, args)})
