"""The dataclass is the CLI: a settings dataclass declares each option once (its default, help and check) and
the command's argparse flags are generated from it, so no default, range or help text is written twice.

    @dataclass
    class TrainConfig(Options):
        lr_full: float = option(5e-5, "peak learning rate of full fine-tuning", check=POSITIVE)

    add_dataclass_arguments(parser, TrainConfig)        # --lr-full FLOAT (default 5e-05)
    cfg = from_args(TrainConfig, parser.parse_args())   # TrainConfig(lr_full=...), checked

A check fails with a UserError naming the option's flag, whether the value came from the command line,
from Python, or from a stored run.json.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import typing
from collections.abc import Callable
from typing import Any, ClassVar

from mtserve.serving.errors import UserError

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
):
    """A dataclass field that is also a command-line option.

    flag: the option's name on the command line (default: --field-name); check: (predicate, message);
    choices: the allowed values (checked, and listed by argparse); parse: str -> value, for types argparse
    cannot convert by itself (it raises ValueError with a message); show: value -> str, for the help text."""
    meta = {
        "help": help,
        "flag": flag,
        "check": check,
        "choices": choices,
        "parse": parse,
        "show": show,
        "metavar": metavar,
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


def _arg_type(f: dataclasses.Field, hint) -> Callable[[str], Any]:
    parse = f.metadata["parse"]
    if parse is None:
        if hint not in (int, float, str):
            raise TypeError(f"option {f.name}: a {hint} field needs option(parse=...)")
        return hint

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as e:  # argparse prints this message after the flag's name
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


def add_dataclass_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls,
    *,
    only: tuple[str, ...] | None = None,
    inherit: str | None = None,
) -> None:
    """One flag per option of `cls` (or of those named in `only`), its value stored under the field's name.

    Defaults are the dataclass's own; with `inherit` (where the defaults come from instead, e.g. "the run's"),
    a flag not given is None, for the caller to merge over the inherited settings (mtserve task)."""
    hints = typing.get_type_hints(cls)
    unknown = set(only or ()) - {f.name for f in options(cls)}
    if unknown:  # a typo here would silently drop a flag
        raise ValueError(f"{cls.__name__} has no option(s) {sorted(unknown)}")
    for f in options(cls):
        if only is not None and f.name not in only:
            continue
        m = f.metadata
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if hints[f.name] is bool:  # a switch: given or not
            if default is not False:
                raise TypeError(
                    f"option {f.name}: a bool option defaults to False (a flag that switches it on)"
                )
            parser.add_argument(
                flag(f), dest=f.name, action="store_true", default=None if inherit else False, help=m["help"]
            )
            continue
        parser.add_argument(
            flag(f),
            dest=f.name,
            type=_arg_type(f, hints[f.name]),
            choices=m["choices"],
            default=None if inherit else default,
            metavar=m["metavar"] or (None if m["choices"] else hints[f.name].__name__.upper()),
            help=f"{m['help']} (default: {inherit or m['show'](default)})",
        )


def from_args(cls, args: argparse.Namespace):
    """`cls` from the flags `add_dataclass_arguments(parser, cls)` added; checked as any construction is."""
    return cls.from_dict({f.name: getattr(args, f.name) for f in options(cls)})
