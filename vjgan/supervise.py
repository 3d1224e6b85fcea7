"""Every long-lived thread of the show runs here: a fault is logged, shown, and the thread restarts.

    supervisor = Supervisor(alarms)
    supervisor.spawn("generator", worker.run_until, label="GENERATOR", failing="holding the last picture")
    supervisor.watch("no-frames", "NO NEW FRAME for {age:.1f} s", 2.0, worker.frame_age)
    ...
    supervisor.stop()

A task's body is `body(stop: threading.Event)`: it runs until `stop` is set, and returns (its work
is done: a file ended, say) or raises. A raise is logged once with its traceback (the same fault
again gets one line, not another page), raises an alarm line for the operator ("GENERATOR
RESTARTED (2)"), and the body is called again after a backoff (`RestartPolicy`, a pure function
of how many failures came in a row). `on_restart` runs first, so the task can rebuild what the
fault may have left broken (a fresh analyzer, a new stream). A task that keeps failing keeps
being retried at the longest backoff, and its alarm says what the show does meanwhile.

The watchdog looks for the faults that raise nothing: a thread stuck in a driver call, a source
that claims to run but delivers nothing. Each watch is an age (seconds since the thing last
happened, or None when it is not expected to happen now) and a limit.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Optional

from .alarms import ERROR, WARNING, AlarmBoard

log = logging.getLogger(__name__)

Body = Callable[[threading.Event], None]
WATCHDOG_PERIOD_S = 0.1


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before restarting after the n-th failure in a row (pure: test with numbers)."""

    first_delay_s: float = 0.25
    factor: float = 2.0
    max_delay_s: float = 8.0
    healthy_after_s: float = 20.0  # a run at least this long forgives the failures before it
    failing_after: int = 3  # this many in a row and the alarm says the task keeps failing

    def delay(self, failures_in_a_row: int) -> float:
        if failures_in_a_row <= 0:
            return 0.0
        return min(self.max_delay_s, self.first_delay_s * self.factor ** (failures_in_a_row - 1))

    def in_a_row(self, previous: int, ran_for_s: float) -> int:
        """The failure count after one more failure of a run that lasted `ran_for_s`."""
        return 1 if ran_for_s >= self.healthy_after_s else previous + 1

    def failing(self, failures_in_a_row: int) -> bool:
        return failures_in_a_row >= self.failing_after


@dataclass(frozen=True)
class TaskStatus:
    name: str
    alive: bool
    restarts: int
    failures_in_a_row: int
    last_error: str


class Task:
    """One supervised thread (made by `Supervisor.spawn`)."""

    def __init__(self, supervisor: "Supervisor", name: str, body: Body, *, label: str, failing: str,
                 policy: RestartPolicy, on_restart: Optional[Callable[[], None]], stop: threading.Event) -> None:
        self.name = name
        self.label = label
        self._supervisor = supervisor
        self._body = body
        self._failing_text = failing
        self._policy = policy
        self._on_restart = on_restart
        self._stop = stop
        self.restarts = 0
        self.failures_in_a_row = 0
        self.last_error = ""
        self._seen_faults: set[str] = set()
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"vjgan-{name}", daemon=True)

    @property
    def alarm_key(self) -> str:
        return f"task:{self.name}"

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: Optional[float] = None) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def status(self) -> TaskStatus:
        return TaskStatus(self.name, self.thread.is_alive(), self.restarts, self.failures_in_a_row, self.last_error)

    def _run(self) -> None:
        clock = self._supervisor.clock
        try:
            while not self._stop.is_set():
                started = clock()
                try:
                    if self.restarts and self._on_restart is not None:
                        self._on_restart()
                    self._body(self._stop)
                    return  # done, or asked to stop
                except Exception as e:  # noqa: BLE001 - the whole point: nothing ends the show
                    if self._stop.is_set():
                        return
                    self._failed(e, clock() - started)
                if self._stop.wait(self._policy.delay(self.failures_in_a_row)):
                    return
        finally:
            self.finished.set()

    def _failed(self, error: Exception, ran_for_s: float) -> None:
        self.restarts += 1
        self.failures_in_a_row = self._policy.in_a_row(self.failures_in_a_row, ran_for_s)
        self.last_error = f"{type(error).__name__}: {error}"
        fault = f"{type(error).__name__}:{error}"
        if fault not in self._seen_faults:
            self._seen_faults.add(fault)
            log.error("%s failed and restarts: %s\n%s", self.name, self.last_error,
                      "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip())
        else:
            log.error("%s failed again (%d restarts): %s", self.name, self.restarts, self.last_error)
        if self._policy.failing(self.failures_in_a_row):
            text = f"{self.label} FAILING ({self.restarts} restarts)"
            if self._failing_text:
                text += f" — {self._failing_text}"
        else:
            text = f"{self.label} RESTARTED ({self.restarts})"
        self._supervisor.alarms.raise_alarm(self.alarm_key, text, ERROR)


@dataclass(frozen=True)
class Watch:
    key: str
    text: str  # may use {age}: seconds since it last happened
    limit_s: float
    age: Callable[[], Optional[float]]  # None: not expected now (frozen, input stopped...)
    level: str = WARNING


class Supervisor:
    def __init__(self, alarms: Optional[AlarmBoard] = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.alarms = alarms or AlarmBoard()
        self.clock = clock
        self._guard = threading.Lock()
        self._tasks: list[Task] = []
        self._watches: dict[str, Watch] = {}
        self._stop = threading.Event()
        self._watchdog: Optional[threading.Thread] = None

    def spawn(self, name: str, body: Body, *, label: Optional[str] = None, failing: str = "",
              policy: RestartPolicy = RestartPolicy(), on_restart: Optional[Callable[[], None]] = None) -> Task:
        """Start `body` on its own supervised thread. `label` names it in alarms (default: NAME)."""
        task = Task(self, name, body, label=label or name.upper(), failing=failing, policy=policy,
                    on_restart=on_restart, stop=threading.Event())
        with self._guard:
            self._tasks = [t for t in self._tasks if not t.finished.is_set()] + [task]
        task.thread.start()
        return task

    def watch(self, key: str, text: str, limit_s: float, age: Callable[[], Optional[float]],
              level: str = WARNING) -> None:
        """Raise `text` while `age()` exceeds `limit_s`; clear it (recovered) when it no longer does."""
        with self._guard:
            self._watches[key] = Watch(key, text, limit_s, age, level)
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch_loop, name="vjgan-watchdog", daemon=True)
                self._watchdog.start()

    def unwatch(self, key: str) -> None:
        with self._guard:
            self._watches.pop(key, None)
        self.alarms.clear(key)

    def check_watches(self) -> None:
        """One pass of the watchdog (its thread calls this; tests may too)."""
        with self._guard:
            watches = list(self._watches.values())
        for w in watches:
            try:
                age = w.age()
            except Exception as e:  # a broken probe is itself worth a line, once
                age = None
                log.debug("watch %s failed: %s", w.key, e)
            if age is not None and age > w.limit_s:
                self.alarms.raise_alarm(w.key, w.text.format(age=age), w.level)
            else:
                self.alarms.clear(w.key)

    def _watch_loop(self) -> None:
        while not self._stop.wait(WATCHDOG_PERIOD_S):
            self.check_watches()

    def tasks(self) -> list[TaskStatus]:
        with self._guard:
            return [t.status() for t in self._tasks]

    def stop(self, timeout: float = 3.0) -> list[str]:
        """Stop every task and the watchdog; returns the names of tasks that did not end in time
        (they are daemon threads, so a thread stuck in a driver cannot keep the process alive)."""
        self._stop.set()
        with self._guard:
            tasks = list(self._tasks)
        for task in tasks:
            task.stop()
        deadline = self.clock() + timeout
        stuck = [t.name for t in tasks if not t.join(max(0.0, deadline - self.clock()))]
        if self._watchdog is not None:
            self._watchdog.join(1.0)
        for name in stuck:
            log.warning("%s did not stop within %.0f s; leaving it behind", name, timeout)
        return stuck
