"""The MIDI controller of the live show: ports, mappings, learn, takeover, clock and LED feedback.

    params = ParamStore([...])
    midi = MidiController(params, post=show_queue.post, clock=engine_clock_sink,
                          supervisor=show_supervisor, inputs=["nano"])
    midi.set_mappings(mappings_from_list(preset["midi"]["mappings"]))
    midi.start()                     # opens the ports (MidiPortError if "nano" matches nothing)
    midi.learn("bass_gain")          # the next knob moved is bound to bass_gain
    ...
    autosave["midi"] = {"mappings": midi.mappings_to_list()}
    midi.stop()

What the controller's knobs and pads do becomes commands (vjgan.control.commands) posted to
`post`: in the show, its `CommandQueue.post`, so that MIDI steers the show the way keys, the
operator window and OSC do, applied by the show's main loop in order. Without a show (a test, a
tool), `ApplyToParams(params)` applies them to the parameters at once.

Threads, each a supervised task (a fault is logged with its traceback, raises an operator alarm
such as "MIDI INPUT RESTARTED (1)" and restarts the thread after a backoff): the input reader
drains the open ports and runs `MidiRouter.handle` for each message; the port watcher lists
ports at a low rate and reconnects; the feedback sender sends LED updates at a bounded rate.
Every public method here may be called from any thread.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable, Optional, Sequence

from ..motion.params import ParamStore
from ..supervise import Supervisor
from .apply import CommandSink
from .clock import ClockSink, ClockState
from .feedback import FeedbackSender, feedback_messages
from .mapping import DEFAULT_STEP, DEFAULT_TAKEOVER, Control, Mapping, MappingTable, mappings_from_list
from .ports import INPUT_QUEUE_SIZE, PortManager, PortPatterns
from .router import LearnRequest, MidiActivity, MidiRouter, validate_learn_request

log = logging.getLogger(__name__)


def _log_report(line: str) -> None:
    log.info("%s", line)


class MidiController:
    """Everything MIDI for one show. Create, `start()`, `stop()`; safe to use from any thread."""

    def __init__(self, params: ParamStore, *, post: CommandSink, clock: Optional[ClockSink] = None,
                 supervisor: Optional[Supervisor] = None, inputs: Sequence[str] = (),
                 outputs: Optional[Sequence[str]] = None, mappings: Iterable[Mapping] = (),
                 api: Optional[str] = None, client_name: str = "vjgan",
                 report: Optional[Callable[[str], None]] = None, poll_interval_s: float = 0.5,
                 feedback_rate_hz: float = 50.0, input_queue_size: int = INPUT_QUEUE_SIZE) -> None:
        """`post(command)` receives every command the controls make (the show's
        `CommandQueue.post`; `ApplyToParams(params)` where there is no show); `params` is read
        for pick-up takeover and LED feedback, never written here. `supervisor` runs the
        controller's threads (the show's, so that its alarms reach the operator; without one the
        controller makes its own). `inputs`: name patterns of the input ports ("*" for all);
        `outputs`: patterns of the feedback ports (None: the same devices as the inputs, [] for
        none); `api`: "alsa", "jack", "coremidi", "winmm" or None for $VJGAN_MIDI_API / the
        platform default; `report(line)` receives one line per event worth telling the operator
        (port lost, reconnected, a mapping to a missing parameter...), by default the log;
        `input_queue_size`: messages each input port holds until the reader takes them."""
        self.params = params
        self.post = post
        self.supervisor = supervisor if supervisor is not None else Supervisor()
        self._report = report or _log_report
        explicit_outputs = outputs is not None
        patterns = PortPatterns(inputs=tuple(inputs), outputs=tuple(outputs if explicit_outputs else inputs),
                                outputs_required=explicit_outputs)
        self._ports = PortManager(patterns, self._on_message, api=api, client_name=client_name,
                                  report=self._report, poll_interval_s=poll_interval_s,
                                  on_output_connected=self._on_output_connected, supervisor=self.supervisor,
                                  input_queue_size=input_queue_size)
        self._router = MidiRouter(params, post=post, clock=clock, report=self._report,
                                  open_inputs=self._ports.open_inputs, on_table_changed=self.resend_feedback)
        self._feedback = FeedbackSender(self._ports.send, rate_hz=feedback_rate_hz, supervisor=self.supervisor)
        self._router.set_table(MappingTable(mappings))
        self._unsubscribe: Optional[Callable[[], None]] = None
        self._started = False

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self, *, require_ports: bool = True) -> None:
        """Open the ports and start the threads. With `require_ports`, an input pattern that
        matches no port raises `MidiPortError` (one line listing the ports there are); without,
        it is reported and opened when it appears (a controller plugged in later)."""
        if self._started:
            return
        self._unsubscribe = self.params.subscribe(self._on_param_changed)
        self._feedback.start()
        try:
            self._ports.start(require=require_ports)
        except BaseException:
            self._stop_threads()
            raise
        self._started = True
        self.resend_feedback()

    def stop(self) -> None:
        """Close the ports and stop the controller's threads (not the rest of the supervisor's)."""
        self._ports.stop()
        self._stop_threads()
        self._started = False

    def _stop_threads(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._feedback.stop()

    def __enter__(self) -> "MidiController":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- mappings ----------------------------------------------------------------------------------------

    @property
    def mappings(self) -> tuple[Mapping, ...]:
        return self._router.table.mappings

    def mappings_for(self, target: str) -> tuple[Mapping, ...]:
        """Mappings bound to a parameter or action (for the operator window's parameter list)."""
        return self._router.table.for_target(target)

    def set_mappings(self, mappings: Iterable[Mapping]) -> None:
        """Replace all mappings (a preset recall). Raises `MappingError` on conflicting controls."""
        self._router.set_table(MappingTable(mappings))

    def load_mappings(self, items: Any, where: str = "MIDI mappings") -> None:
        """Replace all mappings from their plain-dict form (strict; one `MappingError` line)."""
        self.set_mappings(mappings_from_list(items, where))

    def mappings_to_list(self) -> list[dict[str, Any]]:
        """The plain-dict form for a preset or the autosaved state."""
        return self._router.table.to_list()

    def add_mapping(self, mapping: Mapping) -> None:
        """Bind a control (any mapping already on that control is removed)."""
        self._router.add_mapping(mapping)

    def remove_mappings(self, *, target: Optional[str] = None, control: Optional[Control] = None) -> int:
        """Unbind everything bound to `target` and/or on `control`; returns how many were removed."""
        return self._router.remove_mappings(target=target, control=control)

    def arm_takeover(self, params: Optional[Iterable[str]] = None) -> None:
        """Absolute knobs (of `params`, or all) must pick their value up again: call after a bank
        switch on the controller. (Values changed through the ParamStore, such as a preset recall,
        arm their knobs automatically.)"""
        self._router.arm_takeover(None if params is None else set(params))

    def takeover_state(self, control: Control) -> tuple[Optional[float], bool]:
        """(last normalised position of the knob or None, whether it drives its value now)."""
        return self._router.takeover_state(control)

    # --- learn ----------------------------------------------------------------------------------------------

    def learn(self, target: str, *, action: bool = False, kind: Optional[str] = None,
              step: float = DEFAULT_STEP, takeover: str = DEFAULT_TAKEOVER,
              on_learned: Optional[Callable[[Mapping], None]] = None) -> None:
        """Bind the next control moved to parameter `target` (or, with `action=True`, the named
        action `target` of the show's vocabulary, vjgan.control.commands.ACTIONS).

        The next usable message wins: a knob (CC) becomes `absolute` (upgraded to `absolute14` if
        its CC n + 32 follows at once), a pad or button `trigger` for an action, `toggle` for a
        switch parameter and `momentary` for others, unless `kind` says otherwise (e.g.
        "relative-twos" for an endless encoder). Learning a control already bound moves it.
        `on_learned(mapping)` is called on the MIDI input thread (again if a 14-bit upgrade follows).
        Raises a `UserError` line for an unknown parameter or action or a bad kind."""
        req = LearnRequest(target, action, kind, step, takeover, on_learned)
        validate_learn_request(self.params, req)
        self._router.learn(req)

    def cancel_learn(self) -> None:
        self._router.cancel_learn()

    @property
    def learning(self) -> Optional[LearnRequest]:
        """The pending learn request, None once bound or cancelled."""
        return self._router.learning

    # --- state for the operator window --------------------------------------------------------------------

    def clock_state(self) -> ClockState:
        return self._router.clock_state(time.perf_counter())

    def activity(self) -> MidiActivity:
        return self._router.activity()

    def connected_ports(self) -> dict[str, list[str]]:
        return {"inputs": self._ports.open_inputs(), "outputs": self._ports.open_outputs()}

    @property
    def port_polls(self) -> int:
        """Completed port scans (the watcher's heartbeat)."""
        return self._ports.polls

    @property
    def feedback_sent(self) -> int:
        return self._feedback.sent_count

    def handle_message(self, port: str, data: Sequence[int], t: Optional[float] = None) -> None:
        """Feed one message as if it came from input `port` (a virtual keyboard, a network bridge).
        It is handled on the caller's thread; a fault raises to the caller."""
        self._router.handle(port, list(data), time.perf_counter() if t is None else t)

    # --- wiring ------------------------------------------------------------------------------------------------

    def _on_message(self, port: str, data: list, t: float) -> None:
        self._router.handle(port, data, t)

    def _on_param_changed(self, name: str, value: float, origin: object = None) -> None:
        # Any source, as the show applies it: MIDI, the keyboard, a preset, the operator window.
        # First takeover, then LEDs.
        self._router.on_param_changed(name, value, origin)
        mappings = self._router.table.for_param(name)
        if not mappings:
            return
        try:
            normalized = self.params.spec(name).to_normalized(value)
        except Exception:
            return
        for m in mappings:
            if not m.feedback:
                continue
            msgs = feedback_messages(m, normalized)
            if m.is_absolute and origin == m.control:
                self._feedback.shown_by_hand(m.control, msgs)
            else:
                self._feedback.update(m.control, msgs)

    def resend_feedback(self) -> None:
        """Queue every mapped value for the LEDs (after start, a mapping change, a replug)."""
        for m in self._router.table:
            if not m.feedback or m.param is None:
                continue
            try:
                normalized = self.params.get_normalized(m.param)
            except Exception:
                continue
            self._feedback.update(m.control, feedback_messages(m, normalized))

    def _on_output_connected(self, name: str) -> None:
        self._feedback.forget()
        self.resend_feedback()
