"""MIDI mappings as typed, immutable data, and their plain-dict form for presets and autosave.

A `Mapping` binds one hardware control (`Control`: port, channel, CC or note number) to a
parameter or an action, with a `kind` saying how the control's values are read. A
`MappingTable` is an immutable set of mappings in which each control is bound at most once
(learning a control that is already bound moves it); the MIDI callback reads the current table
through one reference, and changes publish a new table.

The dict form is flat so that a preset stores it as a TOML array of tables:

    [[midi.mappings]]
    channel = 1
    cc = 21
    kind = "absolute"
    param = "bass_gain"
    takeover = "pickup"

Reading it is strict: an unknown key or a bad value is one `MappingError` line naming the
mapping and the key, never a silently dropped binding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Literal, Mapping as TMapping, Optional, Sequence

from ..errors import UserError
from ..validation import Number
from .commands import check_action
from .messages import CC14_LSB_OFFSET, CC14_MAX_MSB_NUMBER


class MappingError(UserError):
    """A MIDI mapping (from a preset, the autosaved state or the API) is not valid."""

    def __init__(self, message: str, detail: Optional[str] = None) -> None:
        super().__init__(message)
        self.detail = detail if detail is not None else message  # the message without its "where" prefix


def _invalid(where: str, detail: str) -> MappingError:
    return MappingError(f"{where}: {detail}", detail)


MessageType = Literal["cc", "note"]

ABSOLUTE = "absolute"
ABSOLUTE14 = "absolute14"
RELATIVE_TWOS = "relative-twos"
RELATIVE_OFFSET = "relative-offset"
RELATIVE_SIGNED = "relative-signed"
TRIGGER = "trigger"
MOMENTARY = "momentary"
TOGGLE = "toggle"

ABSOLUTE_KINDS = (ABSOLUTE, ABSOLUTE14)
RELATIVE_KINDS = (RELATIVE_TWOS, RELATIVE_OFFSET, RELATIVE_SIGNED)
# Buttons: notes, or CCs from pads and buttons in CC mode (value >= 64 = pressed).
BUTTON_KINDS = (TRIGGER, MOMENTARY, TOGGLE)
KINDS = ABSOLUTE_KINDS + RELATIVE_KINDS + BUTTON_KINDS

RELATIVE_ENCODING = {RELATIVE_TWOS: "twos", RELATIVE_OFFSET: "offset", RELATIVE_SIGNED: "signed"}

PICKUP = "pickup"  # the knob takes over once it passes through the stored value
JUMP = "jump"  # the knob sets its value at once
SCALE = "scale"  # the value moves proportionally until knob and value meet at an end
TAKEOVER_MODES = (PICKUP, JUMP, SCALE)

DEFAULT_STEP = 1.0 / 128.0  # relative encoders: one tick moves 1/128 of the range
STEP = Number(0.0, 1.0, low_open=True)
CHANNEL = Number(1, 16, whole=True)
CONTROL_NUMBER = Number(0, 127, whole=True)  # a CC or note number
DEFAULT_TAKEOVER = PICKUP

_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def stable_port_name(name: str) -> str:
    """A port's name without the ALSA client:port numbers (`"nanoKONTROL2:... 24:0"`), which
    change when the device is replugged into another socket."""
    return re.sub(r"\s+\d+:\d+$", "", name)


@dataclass(frozen=True)
class Control:
    """One physical control as the hardware identifies it."""

    message: MessageType
    number: int  # CC or note number, 0-127
    channel: int  # 1-16
    port: Optional[str] = None  # case-insensitive substring of the input port's name; None = any port

    def __post_init__(self) -> None:
        if self.message not in ("cc", "note"):
            raise MappingError(f"MIDI control: message must be 'cc' or 'note' (got {self.message!r})")
        _whole("number", self.number, CONTROL_NUMBER, "MIDI control")
        _whole("channel", self.channel, CHANNEL, "MIDI control")
        if self.port is not None and (not isinstance(self.port, str) or not self.port.strip()):
            raise MappingError("MIDI control: port must be a non-empty string (a part of the port's name)")

    def matches_port(self, port_name: str) -> bool:
        return self.port is None or self.port.casefold() in port_name.casefold()

    def overlaps(self, other: "Control") -> bool:
        """Could one incoming message reach both? (Same channel and number; ports that may coincide.)"""
        if (self.message, self.channel, self.number) != (other.message, other.channel, other.number):
            return False
        return self.port is None or other.port is None or self.port.casefold() == other.port.casefold()

    def label(self) -> str:
        what = f"CC {self.number}" if self.message == "cc" else f"note {self.number}"
        where = f" on '{self.port}'" if self.port else ""
        return f"ch {self.channel} {what}{where}"


@dataclass(frozen=True)
class Mapping:
    """A control bound to a parameter (`param`) or an action (`action`), exactly one of them."""

    control: Control
    kind: str
    param: Optional[str] = None
    action: Optional[str] = None
    step: float = DEFAULT_STEP  # relative kinds: change of the normalised value per encoder tick
    takeover: str = DEFAULT_TAKEOVER  # absolute kinds: pickup, jump or scale
    feedback: bool = True  # send the value back to the controller's LEDs

    def __post_init__(self) -> None:
        where = f"MIDI mapping ({self.control.label()})"
        if self.kind not in KINDS:
            raise _invalid(where, f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if (self.param is None) == (self.action is None):
            raise _invalid(where, "give exactly one of 'param' or 'action'")
        if self.param is not None and (not isinstance(self.param, str) or not _PARAM_NAME.match(self.param)):
            raise _invalid(where, f"param {self.param!r} is not a parameter name")
        if self.action is not None:
            try:
                check_action(self.action)  # a name of the show's vocabulary, with its argument if it takes one
            except UserError as e:
                raise _invalid(where, str(e)) from None
            if self.kind != TRIGGER:
                raise _invalid(where, f"an action is bound with kind 'trigger' (got {self.kind!r})")
        elif self.kind == TRIGGER:
            raise _invalid(where, "kind 'trigger' fires an action; a parameter takes 'momentary' or 'toggle'")
        if self.kind in ABSOLUTE_KINDS + RELATIVE_KINDS and self.control.message != "cc":
            raise _invalid(where, f"kind {self.kind!r} reads control changes, not notes")
        if self.kind == ABSOLUTE14 and self.control.number > CC14_MAX_MSB_NUMBER:
            raise _invalid(where, "a 14-bit control has its MSB on CC 0-31 (LSB on CC n+32), "
                                  f"not CC {self.control.number}")
        problem = STEP.problem(self.step)
        if problem is not None:
            raise _invalid(where, f"step {problem}")
        if self.takeover not in TAKEOVER_MODES:
            raise _invalid(where, f"takeover {self.takeover!r} is not one of {', '.join(TAKEOVER_MODES)}")
        if not isinstance(self.feedback, bool):
            raise _invalid(where, "feedback must be true or false")

    @property
    def target(self) -> str:
        return self.param if self.param is not None else self.action  # type: ignore[return-value]

    @property
    def is_absolute(self) -> bool:
        return self.kind in ABSOLUTE_KINDS

    @property
    def is_relative(self) -> bool:
        return self.kind in RELATIVE_KINDS

    @property
    def is_button(self) -> bool:
        return self.kind in BUTTON_KINDS

    def controls(self) -> tuple[Control, ...]:
        """Every control this mapping listens to (a 14-bit control also owns CC n + 32)."""
        if self.kind == ABSOLUTE14:
            return (self.control, replace(self.control, number=self.control.number + CC14_LSB_OFFSET))
        return (self.control,)

    def describe(self) -> str:
        return f"{self.control.label()} → {'action ' if self.action else ''}{self.target} ({self.kind})"

    # --- plain dicts (TOML-friendly) ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.control.port is not None:
            d["port"] = self.control.port
        d["channel"] = self.control.channel
        d[self.control.message] = self.control.number
        d["kind"] = self.kind
        if self.param is not None:
            d["param"] = self.param
        else:
            d["action"] = self.action
        if self.is_absolute:
            d["takeover"] = self.takeover
        if self.is_relative:
            d["step"] = self.step
        if not self.feedback:
            d["feedback"] = False
        return d

    @classmethod
    def from_dict(cls, d: TMapping[str, Any], where: str = "MIDI mapping") -> "Mapping":
        if not isinstance(d, TMapping):
            raise _invalid(where, f"expected a table of keys, got {type(d).__name__}")
        unknown = sorted(set(d) - _ALLOWED_KEYS)
        if unknown:
            raise _invalid(where, f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_ALLOWED_KEYS))})")
        if ("cc" in d) == ("note" in d):
            raise _invalid(where, "give exactly one of 'cc' or 'note'")
        message: MessageType = "cc" if "cc" in d else "note"
        for key in ("channel", "kind"):
            if key not in d:
                raise _invalid(where, f"missing key {key!r}")
        if ("param" in d) == ("action" in d):
            raise _invalid(where, "give exactly one of 'param' or 'action'")
        number = _whole(message, d[message], CONTROL_NUMBER, where)
        channel = _whole("channel", d["channel"], CHANNEL, where)
        port = d.get("port")
        if port is not None and (not isinstance(port, str) or not port.strip()):
            raise _invalid(where, "port must be a non-empty string (a part of the port's name)")
        kind = d["kind"]
        if not isinstance(kind, str) or kind not in KINDS:
            raise _invalid(where, f"kind {kind!r} is not one of {', '.join(KINDS)}")
        for key in ("param", "action"):
            if key in d and (not isinstance(d[key], str) or not d[key]):
                raise _invalid(where, f"{key} must be a non-empty string")
        if "takeover" in d and kind not in ABSOLUTE_KINDS:
            raise _invalid(where, f"'takeover' applies to absolute kinds only, not {kind!r}")
        if "step" in d and kind not in RELATIVE_KINDS:
            raise _invalid(where, f"'step' applies to relative kinds only, not {kind!r}")
        step = d.get("step", DEFAULT_STEP)
        problem = STEP.problem(step)
        if problem is not None:
            raise _invalid(where, f"step {problem}")
        takeover = d.get("takeover", DEFAULT_TAKEOVER)
        if not isinstance(takeover, str):
            raise _invalid(where, f"takeover must be one of {', '.join(TAKEOVER_MODES)}")
        feedback = d.get("feedback", True)
        if not isinstance(feedback, bool):
            raise _invalid(where, f"feedback must be true or false (got {feedback!r})")
        try:
            return cls(control=Control(message, number, channel, port), kind=kind, param=d.get("param"),
                       action=d.get("action"), step=float(step), takeover=takeover, feedback=feedback)
        except MappingError as e:
            # Re-anchor the message on the caller's description (e.g. "MIDI mappings #3").
            raise _invalid(where, e.detail) from None


_ALLOWED_KEYS = frozenset({"port", "channel", "cc", "note", "kind", "param", "action", "takeover", "step", "feedback"})


def _whole(key: str, value: Any, rule: Number, where: str) -> int:
    problem = rule.problem(value)
    if problem is not None:
        raise _invalid(where, f"{key} {problem}")
    return int(value)


def mappings_to_list(mappings: Iterable[Mapping]) -> list[dict[str, Any]]:
    """Plain dicts for a preset or the autosaved running state (see `mappings_from_list`)."""
    return [m.to_dict() for m in mappings]


def mappings_from_list(items: Any, where: str = "MIDI mappings") -> list[Mapping]:
    """Strictly read mappings written by `mappings_to_list`; raises one `MappingError` line.

    Two mappings on the same control are an error here (a file edited by hand), whereas learning
    a bound control moves it.
    """
    if not isinstance(items, (list, tuple)):
        raise _invalid(where, f"expected a list of tables, got {type(items).__name__}")
    out = [Mapping.from_dict(item, f"{where} #{i + 1}") for i, item in enumerate(items)]
    MappingTable(out)  # the conflict check
    return out


@dataclass(frozen=True)
class MappingTable:
    """An immutable set of mappings, indexed by (message, channel, number) for the MIDI callback."""

    mappings: tuple[Mapping, ...] = ()
    _index: dict[tuple[str, int, int], tuple[tuple[Mapping, bool], ...]] = field(init=False, repr=False, compare=False)
    _by_param: dict[str, tuple[Mapping, ...]] = field(init=False, repr=False, compare=False)

    def __init__(self, mappings: Iterable[Mapping] = ()) -> None:
        ms = tuple(mappings)
        index: dict[tuple[str, int, int], list[tuple[Mapping, bool]]] = {}
        seen: list[tuple[Control, int]] = []
        for i, m in enumerate(ms):
            if not isinstance(m, Mapping):
                raise MappingError(f"MIDI mapping #{i + 1}: expected a Mapping, got {type(m).__name__}")
            for j, c in enumerate(m.controls()):
                for other, k in seen:
                    if c.overlaps(other):
                        raise MappingError(f"MIDI mappings #{k + 1} and #{i + 1} both use {c.label()}")
                seen.append((c, i))
                # The flag marks the LSB half of a 14-bit control.
                index.setdefault((c.message, c.channel, c.number), []).append((m, j == 1))
        object.__setattr__(self, "mappings", ms)
        object.__setattr__(self, "_index", {k: tuple(v) for k, v in index.items()})
        by_param: dict[str, list[Mapping]] = {}
        for m in ms:
            if m.param is not None:
                by_param.setdefault(m.param, []).append(m)
        object.__setattr__(self, "_by_param", {k: tuple(v) for k, v in by_param.items()})

    def __iter__(self) -> Iterator[Mapping]:
        return iter(self.mappings)

    def __len__(self) -> int:
        return len(self.mappings)

    def lookup(self, message: str, channel: int, number: int, port_name: str) -> tuple[tuple[Mapping, bool], ...]:
        """(mapping, is_lsb) pairs that an incoming message on `port_name` reaches."""
        hits = self._index.get((message, channel, number), ())
        if not hits:
            return ()
        return tuple(h for h in hits if h[0].control.matches_port(port_name))

    def for_target(self, name: str) -> tuple[Mapping, ...]:
        return tuple(m for m in self.mappings if m.target == name)

    def for_param(self, name: str) -> tuple[Mapping, ...]:
        return self._by_param.get(name, ())

    def with_mapping(self, mapping: Mapping) -> "MappingTable":
        """Add `mapping`; mappings on any control it uses are removed (learning moves a control)."""
        taken = mapping.controls()
        keep = [m for m in self.mappings if not any(a.overlaps(b) for a in m.controls() for b in taken)]
        return MappingTable([*keep, mapping])

    def without(self, *, target: Optional[str] = None, control: Optional[Control] = None) -> "MappingTable":
        def gone(m: Mapping) -> bool:
            if target is not None and m.target == target:
                return True
            return control is not None and any(c.overlaps(control) for c in m.controls())

        return MappingTable([m for m in self.mappings if not gone(m)])

    def to_list(self) -> list[dict[str, Any]]:
        return mappings_to_list(self.mappings)

    @classmethod
    def from_list(cls, items: Sequence[TMapping[str, Any]], where: str = "MIDI mappings") -> "MappingTable":
        return cls(mappings_from_list(items, where))
