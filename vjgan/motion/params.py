"""Named live parameters: every gain a knob can turn, with its range, default and smoothing.

Any thread (MIDI callback, keyboard, preset recall, operator window) sets a parameter by name;
the frame worker reads an immutable snapshot once per frame and smooths toward it with each
parameter's time constant, so a knob turned quickly never makes the picture jump.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

from ..errors import UserError


class UnknownParameterError(UserError):
    """A name that no parameter carries."""


@dataclass(frozen=True)
class ParamSpec:
    """One named parameter. `smoothing_s` is the time constant the frame worker glides with."""

    name: str
    default: float
    minimum: float = 0.0
    maximum: float = 1.0
    smoothing_s: float = 0.08
    description: str = ""
    group: str = "mapping"  # how the operator window groups the list
    toggle: bool = False  # a switch (0/1), not a continuous value

    def __post_init__(self) -> None:
        if not self.minimum <= self.default <= self.maximum:
            raise ValueError(f"parameter {self.name}: default {self.default} outside [{self.minimum}, {self.maximum}]")

    def clamp(self, value: float) -> float:
        if math.isnan(value):
            return self.default
        return min(self.maximum, max(self.minimum, float(value)))

    def to_normalized(self, value: float) -> float:
        span = self.maximum - self.minimum
        return 0.0 if span == 0 else (value - self.minimum) / span

    def from_normalized(self, x: float) -> float:
        return self.clamp(self.minimum + min(1.0, max(0.0, x)) * (self.maximum - self.minimum))


@dataclass(frozen=True)
class ParamSnapshot:
    """The target values at one moment (immutable), with a version that grows on every change."""

    values: Mapping[str, float]
    version: int

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def get(self, name: str, default: float = 0.0) -> float:
        return self.values.get(name, default)


# listener(name, value, origin): `origin` is whatever the writer passed (a MIDI control that
# moved the value itself, so pick-up takeover can tell its own writes from everybody else's).
Listener = Callable[[str, float, Any], None]


class ParamStore:
    """Thread-safe registry of parameters and their target values."""

    def __init__(self, specs: Iterable[ParamSpec] = ()) -> None:
        self._lock = threading.Lock()
        self._specs: dict[str, ParamSpec] = {}
        self._values: dict[str, float] = {}
        self._version = 0
        self._snapshot = ParamSnapshot(MappingProxyType({}), 0)
        self._spec_map: Mapping[str, ParamSpec] = MappingProxyType({})
        self._listeners: list[Listener] = []
        for spec in specs:
            self.register(spec)

    def register(self, spec: ParamSpec, value: float | None = None) -> None:
        with self._lock:
            self._specs[spec.name] = spec
            self._values[spec.name] = spec.clamp(spec.default if value is None else value)
            self._spec_map = MappingProxyType(dict(self._specs))  # rebuilt when specs change, not per read
            self._publish_locked()

    def unregister_missing(self, keep: Iterable[str]) -> None:
        """Drop parameters not in `keep` (after a preset change removed their routes)."""
        keep = set(keep)
        with self._lock:
            for name in [n for n in self._specs if n not in keep]:
                del self._specs[name]
                del self._values[name]
            self._spec_map = MappingProxyType(dict(self._specs))
            self._publish_locked()

    def _publish_locked(self) -> None:
        self._version += 1
        self._snapshot = ParamSnapshot(MappingProxyType(dict(self._values)), self._version)

    def spec(self, name: str) -> ParamSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownParameterError(f"no parameter named {name!r}") from None

    def specs(self) -> list[ParamSpec]:
        with self._lock:
            return list(self._specs.values())

    def spec_map(self) -> Mapping[str, ParamSpec]:
        """Name → spec, immutable; what a per-frame reader (the smoother) needs, without copying."""
        return self._spec_map

    def names(self) -> list[str]:
        with self._lock:
            return list(self._specs)

    def get(self, name: str) -> float:
        with self._lock:
            if name not in self._values:
                raise UnknownParameterError(f"no parameter named {name!r}")
            return self._values[name]

    def set(self, name: str, value: float, *, notify: bool = True, origin: Any = None) -> float:
        """Set a target value (clamped to the range); returns what was stored."""
        with self._lock:
            spec = self._specs.get(name)
            if spec is None:
                raise UnknownParameterError(f"no parameter named {name!r}")
            stored = spec.clamp(value)
            if self._values[name] == stored:
                return stored
            self._values[name] = stored
            self._publish_locked()
            listeners = list(self._listeners) if notify else []
        for listener in listeners:
            listener(name, stored, origin)
        return stored

    def set_many(self, values: Mapping[str, float]) -> None:
        """Set several values as one change (a preset recall): unknown names are an error."""
        unknown = [n for n in values if n not in self._specs]
        if unknown:
            raise UnknownParameterError(f"no parameter named {unknown[0]!r}")
        with self._lock:
            for name, value in values.items():
                self._values[name] = self._specs[name].clamp(value)
            self._publish_locked()
            listeners = list(self._listeners)
        for name in values:
            for listener in listeners:
                listener(name, self._values[name], None)

    def get_normalized(self, name: str) -> float:
        return self.spec(name).to_normalized(self.get(name))

    def set_normalized(self, name: str, x: float, *, origin: Any = None) -> float:
        return self.set(name, self.spec(name).from_normalized(x), origin=origin)

    def nudge_normalized(self, name: str, delta: float, *, origin: Any = None) -> float:
        """Move by `delta` of the range (relative encoders, arrow keys)."""
        return self.set_normalized(name, self.get_normalized(name) + delta, origin=origin)

    def toggle(self, name: str, *, origin: Any = None) -> float:
        """Flip a switch: to its maximum from the lower half of the range, else to its minimum."""
        spec = self.spec(name)
        return self.set(name, spec.minimum if self.get_normalized(name) >= 0.5 else spec.maximum, origin=origin)

    def reset(self, name: str, *, origin: Any = None) -> float:
        return self.set(name, self.spec(name).default, origin=origin)

    def snapshot(self) -> ParamSnapshot:
        with self._lock:
            return self._snapshot

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call listener(name, value) after each change (e.g. MIDI LED feedback); returns an unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe


@dataclass
class ParamSmoother:
    """The frame worker's private glide toward the latest targets (not shared between threads)."""

    values: dict[str, float] = field(default_factory=dict)

    def step(self, snapshot: ParamSnapshot, specs: Mapping[str, ParamSpec], dt: float) -> dict[str, float]:
        out = {}
        for name, target in snapshot.values.items():
            spec = specs.get(name)
            current = self.values.get(name, target)
            tau = spec.smoothing_s if spec is not None else 0.0
            if tau <= 0 or dt <= 0 or (spec is not None and spec.toggle):
                current = target
            else:
                current += (target - current) * (1.0 - math.exp(-dt / tau))
            out[name] = current
        self.values = out
        return out
