"""The render's steps as stages, each on its own thread, joined by bounded queues.

    calling thread   analysis + motion of a batch  ─▶ generation ─▶ post + 4:2:0 ─▶ encoder (encode.py)

A stage takes items from a queue that holds at most `depth` of them and hands each result to
the next stage, waiting while that one is full. So the work in flight is bounded whatever the
length of the set (memory stays flat over a two-hour file), and the slowest stage sets the pace
while the others overlap with it. One thread per stage and first-in-first-out queues keep the
order, so the video is the same frame for frame as with every stage run inline on the calling
thread (`threaded=False`, the serial path: for comparison, and where threads buy nothing).

The first error in any stage stops them all: the stages drop what they hold, and the calling
thread raises that error at its next hand-over (`Failure`).
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

_END = object()  # after the last item: the stage finishes and its thread ends
_POLL_S = 0.1  # waits are this short so the calling thread stays responsive to Ctrl-C


class Failure:
    """The first error raised in any stage (later ones are consequences)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    def set(self, error: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = error

    def raise_if_set(self) -> None:
        if self.error is not None:
            raise self.error


class Stage(Generic[In, Out]):
    """One step: `work(item)` for each item put, its result handed to `emit`, in order.

    `setup` runs on the stage's own thread before the first item (a GL context must be made on
    the thread that uses it) and returns the stage's state, which `work(state, item)` receives;
    `teardown(state)` runs on that thread at the end, also after an error.
    """

    def __init__(self, name: str, work: Callable[[object, In], Out], emit: Callable[[Out], None],
                 failure: Failure, *, depth: int = 2, threaded: bool = True,
                 setup: Callable[[], object] = lambda: None, teardown: Callable[[object], None] = lambda s: None) -> None:
        self.name = name
        self.items = 0  # items done
        self.depth = depth
        self.high_water = 0  # most items ever waiting in the queue
        self._work, self._emit, self._failure = work, emit, failure
        self._teardown = teardown
        self._threaded = threaded
        self._state: object = None
        self._ready = threading.Event()
        if threaded:
            self._queue: queue.Queue = queue.Queue(maxsize=depth)
            self._thread = threading.Thread(target=self._run, args=(setup,), name=f"vjgan-render-{name}", daemon=True)
            self._thread.start()
            self._ready.wait()  # setup done (or failed): its error shows at the first put
        else:
            self._state = setup()

    @property
    def state(self) -> object:
        return self._state

    def put(self, item: In) -> None:
        """Hand over one item; waits while `depth` items are waiting. Raises the first error of any stage."""
        self._failure.raise_if_set()
        if not self._threaded:
            self._do(item)
            return
        while True:
            self._failure.raise_if_set()
            try:
                self._queue.put(item, timeout=_POLL_S)
                break
            except queue.Full:
                continue
        self.high_water = max(self.high_water, self._queue.qsize())

    def drop_waiting(self) -> int:
        """Forget the items not started yet (a stop: only the first stage may drop, so the video
        stays an unbroken run of frames); returns how many."""
        if not self._threaded:
            return 0
        dropped = 0
        try:
            while True:
                self._queue.get_nowait()
                dropped += 1
        except queue.Empty:
            return dropped

    def finish(self) -> None:
        """Do every item handed over, then end the stage (its thread, its teardown)."""
        if not self._threaded:
            self._teardown(self._state)
            return
        if self._thread.is_alive():
            self._queue.put(_END)  # unbounded wait is fine: the stage drains its queue in any case
            self._thread.join()

    def _do(self, item: In) -> None:
        out = self._work(self._state, item)
        self.items += 1
        self._emit(out)

    def _run(self, setup: Callable[[], object]) -> None:
        try:
            self._state = setup()
        except BaseException as e:  # reported at the next put
            self._failure.set(e)
        finally:
            self._ready.set()
        while True:
            item = self._queue.get()
            if item is _END:
                break
            if self._failure.error is not None:
                continue  # drain without working after a failure anywhere
            try:
                self._do(item)
            except BaseException as e:
                self._failure.set(e)
        try:
            self._teardown(self._state)
        except BaseException as e:
            self._failure.set(e)
