"""The supervisor: a failing thread is logged, shown and restarted; stalls are watched; alarms stay
until acknowledged."""

from __future__ import annotations

import logging
import threading
import time


from vjgan.alarms import AlarmBoard
from vjgan.supervise import RestartPolicy, Supervisor


def _wait(condition, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_backoff_doubles_to_a_ceiling_and_a_long_healthy_run_forgives() -> None:
    p = RestartPolicy(first_delay_s=0.25, factor=2.0, max_delay_s=8.0, healthy_after_s=20.0, failing_after=3)
    assert [p.delay(n) for n in range(0, 8)] == [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert p.in_a_row(5, ran_for_s=1.0) == 6
    assert p.in_a_row(5, ran_for_s=25.0) == 1
    assert not p.failing(2) and p.failing(3)


def test_a_body_that_raises_on_its_third_call_is_restarted_and_shown(caplog) -> None:
    board = AlarmBoard()
    sup = Supervisor(board)
    calls, ran_after_fault = [], threading.Event()
    restarted = []

    def body(stop: threading.Event) -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise ValueError("short runs fail too")
        if len(calls) == 3:
            raise RuntimeError("analyzer exploded")
        ran_after_fault.set()
        stop.wait()  # healthy from now on

    with caplog.at_level(logging.ERROR, logger="vjgan"):
        task = sup.spawn("analysis", body, label="AUDIO ANALYSIS", policy=RestartPolicy(first_delay_s=0.01),
                         on_restart=lambda: restarted.append(1))
        assert _wait(ran_after_fault.is_set)
    sup.stop()
    assert task.restarts == 3 and len(restarted) == 3
    (alarm,) = board.shown()
    assert alarm.text.startswith("AUDIO ANALYSIS FAILING (3 restarts)")
    tracebacks = [r for r in caplog.records if "Traceback" in r.getMessage()]
    assert len(tracebacks) == 2  # one per distinct fault, not one per restart
    assert "analyzer exploded" in caplog.text


def test_a_task_that_keeps_failing_keeps_being_retried_and_says_what_the_show_does() -> None:
    board = AlarmBoard()
    sup = Supervisor(board)
    calls = []

    def body(stop):
        calls.append(1)
        raise RuntimeError("CUDA error")

    task = sup.spawn("generator", body, label="GENERATOR", failing="holding the last picture",
                     policy=RestartPolicy(first_delay_s=0.005, max_delay_s=0.02, failing_after=2))
    assert _wait(lambda: len(calls) >= 6)
    sup.stop()
    assert task.restarts >= 6
    assert board.shown()[0].text.endswith("— holding the last picture")


def test_stop_leaves_a_stuck_thread_behind_instead_of_hanging() -> None:
    sup = Supervisor()
    release = threading.Event()
    sup.spawn("stuck-driver", lambda stop: release.wait(30))
    t0 = time.monotonic()
    stuck = sup.stop(timeout=0.2)
    assert stuck == ["stuck-driver"] and time.monotonic() - t0 < 10
    release.set()


def test_watchdog_raises_while_stalled_and_marks_recovery() -> None:
    board = AlarmBoard()
    sup = Supervisor(board)
    age = [0.1]
    sup.watch("audio-stalled", "NO AUDIO ANALYSIS for {age:.1f} s", 0.5, lambda: age[0])
    sup.check_watches()
    assert board.shown() == ()
    age[0] = 0.8
    sup.check_watches()
    assert board.shown()[0].line() == "NO AUDIO ANALYSIS for 0.8 s"
    age[0] = None  # e.g. input stopped on purpose: not expected
    sup.check_watches()
    assert board.shown()[0].line().endswith("(recovered)")
    sup.stop()


def test_alarms_stay_until_acknowledged_and_an_ongoing_one_returns_only_after_clearing() -> None:
    clock = [0.0]
    board = AlarmBoard(clock=lambda: clock[0])
    board.raise_alarm("audio-lost", "AUDIO LOST — reconnecting")
    board.clear("audio-lost")
    assert [a.line() for a in board.shown()] == ["AUDIO LOST — reconnecting (recovered)"]
    assert board.acknowledge() == 1 and board.shown() == ()
    board.raise_alarm("audio-lost", "AUDIO LOST — reconnecting")
    board.acknowledge("audio-lost")
    board.raise_alarm("audio-lost", "AUDIO LOST — reconnecting")  # still the same loss: stays hidden
    assert board.shown() == ()
    board.clear("audio-lost")
    board.raise_alarm("audio-lost", "AUDIO LOST — reconnecting")  # a new loss: shown again
    assert len(board.shown()) == 1


def test_repeated_raises_count() -> None:
    board = AlarmBoard()
    board.raise_alarm("flash", "FLASHES LIMITED")
    board.clear("flash")
    board.raise_alarm("flash", "FLASHES LIMITED")
    assert board.shown()[0].line() == "FLASHES LIMITED ×2"
