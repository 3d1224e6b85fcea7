"""One rule for every number a user writes: in a preset, a MIDI map or on the command line.

A setting's admissible values are declared once, beside the setting, as a `Number` (whole or
not, finite, within a range). `Number.check` applies the rule and says in one line what is
wrong; `number()` attaches a rule to a dataclass field and `check_fields` applies every rule a
config dataclass declares; `cli_number` makes an argparse type of it. Ranges are the engine's
own: a value a rule admits is one the engine runs with (the tests step the engine at the
limits), so a bad value is caught when the file is read, never in a frame worker mid-show.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

from .errors import UserError


class InvalidSetting(UserError):
    """A setting's value is of the wrong type, not finite, or out of range."""


def shown(value: Any) -> str:
    """A value as a message shows it: short, on one line, whatever it is."""
    text = f"{value:g}" if isinstance(value, float) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


@dataclass(frozen=True)
class Number:
    """The admissible values of one numeric setting."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # (low, …: low itself is not admitted
    high_open: bool = False
    whole: bool = False  # an integer (a TOML float with an integral value is accepted too)
    unit: str = ""  # shown after the range: "s", "dB", "Hz"
    why: str = ""  # shown after the value: what the setting does, or why the range is what it is

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        if self.low is not None and self.high is not None:
            text = (f"{kind} in {'(' if self.low_open else '['}{_bound(self.low)}, "
                    f"{_bound(self.high)}{')' if self.high_open else ']'}")
        elif self.low is not None:
            text = f"{kind} {'>' if self.low_open else '≥'} {_bound(self.low)}"
        elif self.high is not None:
            text = f"{kind} {'<' if self.high_open else '≤'} {_bound(self.high)}"
        else:
            text = kind
        return f"{text} {self.unit}" if self.unit else text

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` (None when it is admitted)."""
        wrong = f"must be {self.describe()}, got {shown(value)}" + (f" ({self.why})" if self.why else "")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return wrong
        if isinstance(value, float):  # (an int is finite and whole, however large)
            if not math.isfinite(value) or (self.whole and not value.is_integer()):
                return wrong
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        return wrong if too_low or too_high else None

    def check(self, value: Any, key: str, error: type[UserError] = InvalidSetting) -> int | float:
        """`value` as int (whole) or float, or `error("KEY must be …, got …")`."""
        problem = self.problem(value)
        if problem is not None:
            raise error(f"{key} {problem}")
        return int(value) if self.whole else float(value)


NUMBER = "vjgan.number"  # field-metadata key of a Number rule
MAX_ITEMS = "vjgan.max_items"  # field-metadata key: the field is a tuple of at most this many numbers


def number(rule: Number, default: Any = dataclasses.MISSING, *, max_items: int | None = None) -> Any:
    """A dataclass field whose value (or, with `max_items`, each value of a tuple) follows `rule`."""
    metadata = {NUMBER: rule} if max_items is None else {NUMBER: rule, MAX_ITEMS: max_items}
    return dataclasses.field(default=default, metadata=metadata)


def field_rule(cls: type, name: str) -> Number:
    """The rule a config dataclass declares for one of its fields."""
    return next(f.metadata[NUMBER] for f in dataclasses.fields(cls) if f.name == name)


def check_fields(obj: Any, where: str, error: type[UserError] = InvalidSetting) -> None:
    """Apply every rule `obj` (a dataclass instance, frozen or not) declares with `number()`.

    Values are stored back as int or float, so a TOML `2` for a float setting and a `3.0` for a
    whole one read alike. Call it first in `__post_init__`, before any check between fields."""
    for f in dataclasses.fields(obj):
        rule = f.metadata.get(NUMBER)
        if rule is None:
            continue
        key = f"{where}.{f.name}" if where else f.name
        value = getattr(obj, f.name)
        if MAX_ITEMS in f.metadata:
            if not isinstance(value, (list, tuple)):
                raise error(f"{key} must be a list of numbers, got {shown(value)}")
            if len(value) > f.metadata[MAX_ITEMS]:
                raise error(f"{key} holds {len(value)} values (at most {f.metadata[MAX_ITEMS]})")
            checked: Any = tuple(rule.check(v, f"{key}[{i}]", error) for i, v in enumerate(value))
        else:
            checked = rule.check(value, key, error)
        object.__setattr__(obj, f.name, checked)


def cli_number(rule: Number) -> Callable[[str], int | float]:
    """An argparse `type=` that parses the text and applies `rule`: `--min-fps 0` is refused
    by the parser in one line instead of dividing by zero in the frame worker."""

    def parse(text: str) -> int | float:
        try:
            value: int | float = int(text) if rule.whole else float(text)
        except ValueError:
            try:
                value = float(text)  # "2.5" for a whole number: say why, not just "invalid"
            except ValueError:
                raise argparse.ArgumentTypeError(f"must be {rule.describe()}, got {text!r}") from None
        problem = rule.problem(value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return int(value) if rule.whole else float(value)

    parse.__name__ = "number"  # argparse names the type in its fallback message
    return parse
