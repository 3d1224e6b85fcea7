"""The one command path: the vocabulary of actions and the queue (coalescing, order, no lost press)."""

from __future__ import annotations

import threading

import pytest

from vjgan.control.commands import (ACTIONS, AcknowledgeAlarm, Blackout, CommandQueue, Freeze, NudgeParam,
                                    RecallPreset, SetParam, StepPreset, Tap, ToggleParam, UnknownActionError,
                                    action_command, describe_actions)


def test_actions_name_typed_commands_with_their_event_time_and_source() -> None:
    tap = action_command("tap-tempo", t=12.5, source="midi")
    assert tap == Tap(t=12.5, source="midi")
    assert action_command("recall-preset:3", t=1.0) == RecallPreset("3", t=1.0)
    assert action_command("recall-preset:drop", t=1.0).which == "drop"
    assert action_command("next-preset", t=0.0) == StepPreset(+1, t=0.0)
    assert action_command("blackout", t=0.0) == Blackout(None, t=0.0)
    assert action_command("acknowledge", t=0.0) == AcknowledgeAlarm(t=0.0)


@pytest.mark.parametrize("bad, reason", [("explode", "no action named 'explode'"),
                                         ("recall-preset", "needs an argument"),
                                         ("blackout:1", "takes no argument"),
                                         ("Blackout!", "is not an action name"),
                                         (3, "must be text")])
def test_unknown_or_malformed_actions_say_why_in_one_line(bad, reason) -> None:
    with pytest.raises(UnknownActionError, match=reason) as e:
        action_command(bad)
    assert "\n" not in str(e.value)


def test_every_action_is_described() -> None:
    lines = describe_actions()
    assert len(lines) == len(ACTIONS)
    assert any(line.startswith("recall-preset:ARG") for line in lines)


def test_knob_sweep_coalesces_to_its_last_value_and_keeps_order() -> None:
    q = CommandQueue()
    q.post(SetParam("bass_gain", 0.1, t=1))
    q.post(Blackout(t=2))
    for i in range(200):
        q.post(SetParam("bass_gain", i / 199, t=3 + i))
    q.post(SetParam("mid_gain", 0.5, t=500))
    drained = q.drain()
    assert [type(c).__name__ for c in drained] == ["Blackout", "SetParam", "SetParam"]
    assert (drained[1].name, drained[1].value) == ("bass_gain", 1.0)
    assert q.coalesced == 200
    assert q.drain() == []


def test_encoder_ticks_are_summed_not_lost() -> None:
    q = CommandQueue()
    for _ in range(100):
        q.post(NudgeParam("zoom", 1 / 128))
    q.post(NudgeParam("zoom", -2 / 128))
    (only,) = q.drain()
    assert only.delta == pytest.approx(98 / 128)


def test_nudge_after_an_absolute_move_keeps_both_in_order() -> None:
    q = CommandQueue()
    q.post(SetParam("zoom", 0.5))
    q.post(NudgeParam("zoom", 0.1))
    assert [type(c) for c in q.drain()] == [SetParam, NudgeParam]


def test_discrete_commands_are_never_coalesced() -> None:
    q = CommandQueue()
    for _ in range(50):
        q.post(ToggleParam("blackout"))
        q.post(Freeze())
    assert len(q.drain()) == 100


def test_a_flood_from_many_threads_loses_no_pad_press() -> None:
    q = CommandQueue()
    pads, knobs = 2000, 20000

    def pad_thread() -> None:
        for i in range(pads):
            q.post(Tap(t=float(i), source="midi"))

    def knob_thread() -> None:
        for i in range(knobs):
            q.post(SetParam("bass_gain", i / knobs, source="midi"))

    drained = []
    threads = [threading.Thread(target=pad_thread), threading.Thread(target=knob_thread)]
    for th in threads:
        th.start()
    while any(th.is_alive() for th in threads):
        drained += q.drain()
    drained += q.drain()
    taps = [c for c in drained if isinstance(c, Tap)]
    assert [c.t for c in taps] == [float(i) for i in range(pads)]
    last = [c for c in drained if isinstance(c, SetParam)][-1]
    assert last.value == (knobs - 1) / knobs


def test_a_full_queue_refuses_with_a_count_rather_than_growing() -> None:
    q = CommandQueue(max_pending=3)
    assert all(q.post(Tap()) for _ in range(3))
    assert not q.post(Tap())
    assert q.refused == 1 and len(q) == 3


def test_post_wakes_the_consumer() -> None:
    q = CommandQueue()
    woken = []
    q.add_waker(lambda: woken.append(1))
    q.post(Tap())
    q.post(Tap())  # already awake: a flood wakes the consumer once, not once per message
    assert q.posted.is_set() and woken == [1]
    q.drain()
    assert not q.posted.is_set()
    q.post(Tap())
    assert woken == [1, 1]
