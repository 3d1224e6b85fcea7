"""`vjgan bench rig`: what the rig costs the show, per picture and per message.

- read-back: the main thread's share of handing a presented picture to the outputs (starting the
  copy into a pixel-buffer object after the present, mapping it at the next turn), at 720p and 1080p;
- OSC: a query's round trip through the listener on loopback (`?` → reply);
- NDI: one picture (and one hop of sound) sent, on the sender's thread (the show never waits for
  it). NDI announces a sender on the network: run this in a namespace with only loopback for a
  machine that must stay quiet (`unshare -n sh -c 'ip link set lo up; vjgan bench rig'`);
- recording: one 720p picture converted and encoded (x264 veryfast), on the take's thread.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from typing import Callable

import numpy as np


def _stats(samples: list[float]) -> str:
    ms = sorted(x * 1000.0 for x in samples)
    return f"p50 {statistics.median(ms):.2f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.2f} ms (n={len(ms)})"


def bench_readback(size: tuple[int, int], n: int = 40) -> tuple[str, str]:
    from ..display.inputs import DisplayInputs
    from ..display.renderer import Renderer
    from ..display.settings import RendererConfig
    from .grab import PictureGrabber

    renderer = Renderer.offscreen(size, RendererConfig())
    try:
        grabber = PictureGrabber(renderer.ctx, max_fps=0)
        starts, maps = [], []
        for i in range(n):
            renderer.render(DisplayInputs(time=i / 60.0))
            renderer.ctx.finish()  # as after the window's swap: the picture is done when the copy starts
            t0 = time.perf_counter()
            grabber.grab(renderer, float(i))
            t1 = time.perf_counter()
            grabber.collect()
            t2 = time.perf_counter()
            starts.append(t1 - t0)
            maps.append(t2 - t1)
        grabber.release()
        gl = str(renderer.ctx.info.get("GL_RENDERER", "?"))
        return gl, f"start copy {_stats(starts)}; map {_stats(maps)}"
    finally:
        renderer.release()


def bench_osc_round_trip(n: int = 300) -> str:
    from ..control.commands import CommandQueue
    from ..audio.features import rest_features
    from ..motion.params import ParamSpec, ParamStore
    from .endpoints import Endpoint
    from .osc_in import OscListener, OscRouter
    from pythonosc.osc_message_builder import OscMessageBuilder

    class State:
        params = ParamStore([ParamSpec("master", 1.0, 0.0, 1.0, 0.05, "", "output")])

        def features(self):
            return rest_features(("bass",))

        def preset_name(self) -> str:
            return "bench"

        def recording(self) -> bool:
            return False

        def quantum(self) -> str:
            return "off"

    listener = OscListener(Endpoint("127.0.0.1", 0), OscRouter(CommandQueue().post, State()))
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    thread.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(2.0)
    b = OscMessageBuilder("/vjgan/param/master")
    b.add_arg("?")
    query = b.build().dgram
    samples = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            client.sendto(query, ("127.0.0.1", listener.endpoint.port))
            client.recvfrom(65536)
            samples.append(time.perf_counter() - t0)
    finally:
        stop.set()
        thread.join(2)
        listener.close()
        client.close()
    return _stats(samples[20:])


def test_picture(size: tuple[int, int], k: int) -> np.ndarray:
    """Smooth colour fields that move with `k` (random noise would be every encoder's worst case,
    and no GAN picture looks like it)."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((h, w, 4), np.uint8)
    out[..., 0] = 127 + 120 * np.sin(x / 37.0 + k * 0.3)
    out[..., 1] = 127 + 120 * np.sin(y / 23.0 - k * 0.2)
    out[..., 2] = 127 + 120 * np.sin((x + y) / 51.0 + k * 0.1)
    out[..., 3] = 255
    return out


def _time_calls(call: Callable[[int], None], n: int) -> str:
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - t0)
    return _stats(samples[3:])


def bench_ndi(size: tuple[int, int], n: int = 60) -> str:
    from .grab import Picture
    from .outputs import AudioChunk
    from .outputs.ndi import NdiSink

    sink = NdiSink("vjgan-bench")
    sink.open()
    try:
        pixels = test_picture(size, 0)
        chunk = AudioChunk(np.zeros(480, np.float32), 48000, 0.0)
        video = _time_calls(lambda i: sink.send_picture(Picture(pixels, i / 60.0, i)), n)
        audio = _time_calls(lambda i: sink.send_audio(chunk), n)
        return f"picture {video}; 10 ms of sound {audio}"
    finally:
        sink.close()


def bench_record(size: tuple[int, int], n: int = 60) -> str:
    import tempfile
    from pathlib import Path

    from .grab import Picture
    from .record import RecordSettings, Take

    class Board:
        def raise_alarm(self, *a, **k) -> None: ...

    with tempfile.TemporaryDirectory() as folder:
        take = Take(RecordSettings(Path(folder) / "bench.mp4"), None, Board())
        pictures = [test_picture(size, i) for i in range(8)]
        result = _time_calls(lambda i: take._write(Picture(pictures[i % 8], i / 30.0, i)), n)
        take._finish()
        return result


def run_rig_bench() -> None:
    for size in ((1280, 720), (1920, 1080)):
        gl, figures = bench_readback(size)
        print(f"read-back {size[0]}x{size[1]} ({gl}): {figures}")
    try:
        print(f"OSC query round trip on loopback: {bench_osc_round_trip()}")
    except ImportError:
        print("OSC: python-osc is not installed (pip install 'vjgan[osc]')")
    for size in ((1280, 720), (1920, 1080)):
        try:
            print(f"NDI send {size[0]}x{size[1]}: {bench_ndi(size)}")
        except Exception as e:  # no NDI here: the other figures still count
            print(f"NDI: {e}")
            break
    print(f"recording 1280x720 (RGBA → yuv420p, x264 veryfast): {bench_record((1280, 720))}")
