"""Real peers for `vjgan live` in the rig, run inside a network namespace with only loopback.

    unshare -n python3 tests/rig_peers.py OUT.json WORKDIR MODEL

Brings loopback up, starts the issue's command (`vjgan live --demo --osc-in 9000 --osc-out
127.0.0.1:9001 --ndi vjgan --record show.mp4`), then plays the rest of the rig against it: a
python-osc server receives the feature stream and the parameter echoes, a client sets
parameters, fires actions, asks with `?`, sends a timed bundle and a flood of bad messages, and
an NDI receiver connects to 127.0.0.1:5961. After at least ten seconds of show it stops the show
with SIGINT and writes what it saw to OUT.json for tests/test_rig_show.py to judge. Nothing here
can reach beyond the namespace's loopback.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

SHOW_SECONDS = 10.0


def main(out: Path, workdir: Path, model: str) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_bundle_builder import OscBundleBuilder
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder
    from pythonosc.osc_server import ThreadingOSCUDPServer

    heard: list[tuple[float, str, list]] = []
    lock = threading.Lock()

    def on_any(address: str, *args) -> None:
        with lock:
            heard.append((time.perf_counter(), address, list(args)))

    dispatcher = Dispatcher()
    dispatcher.set_default_handler(on_any)
    server = ThreadingOSCUDPServer(("127.0.0.1", 9001), dispatcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    result: dict = {"steps": {}}
    show = subprocess.Popen(
        [sys.executable, "-m", "vjgan", "live", "--demo", "--model", model, "--window", "320x180", "--fresh",
         "--no-operator", "--osc-in", "9000", "--osc-out", "127.0.0.1:9001", "--ndi", "vjgan",
         "--record", "show.mp4"],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(5.0)

    def send(address: str, *args) -> None:
        b = OscMessageBuilder(address)
        for a in args:
            b.add_arg(a)
        client.sendto(b.build().dgram, ("127.0.0.1", 9000))

    def ask(address: str) -> list:
        send(address, "?")
        data, _ = client.recvfrom(65536)
        m = OscMessage(data)
        return [m.address, *m.params]

    def echoes(name: str) -> list[float]:
        with lock:
            return [a[0] for _, addr, a in heard if addr == f"/vjgan/param/{name}"]

    def wait_for(condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if show.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    try:
        result["steps"]["features"] = wait_for(lambda: any(a == "/vjgan/hop" for _, a, _ in heard), 240)
        first_hop = time.monotonic()
        result["params"] = ask("/vjgan/params")
        send("/vjgan/param/master", 0.25)
        result["steps"]["master_echo"] = wait_for(lambda: 0.25 in echoes("master"), 10)
        result["master_query"] = ask("/vjgan/param/master")
        send("/vjgan/action/freeze")
        result["steps"]["freeze_on"] = wait_for(lambda: 1.0 in echoes("freeze"), 10)
        send("/vjgan/action/freeze", 1)
        result["steps"]["freeze_off"] = wait_for(lambda: echoes("freeze")[-1:] == [0.0], 10)
        send("/vjgan/action/freeze", 0)  # a button's release: nothing happens
        # A bundle for 1.5 s from now, then a plain message: the plain one must land first.
        bundle = OscBundleBuilder(time.time() + 1.5)
        m = OscMessageBuilder("/vjgan/param/master")
        m.add_arg(0.75)
        bundle.add_content(m.build())
        client.sendto(bundle.build().dgram, ("127.0.0.1", 9000))
        send("/vjgan/param/master", 0.5)
        result["steps"]["timed_bundle"] = wait_for(lambda: 0.75 in echoes("master"), 10)
        result["master_echoes"] = echoes("master")
        # A flood of bad messages: refused in a few log lines, and the show still answers.
        for i in range(100):
            send("/vjgan/nowhere", i)
            send("/vjgan/param/master", "loud")
        client.sendto(b"not osc at all", ("127.0.0.1", 9000))
        result["after_flood"] = ask("/vjgan/preset")
        # The feature stream, for two seconds.
        with lock:
            start = len(heard)
        time.sleep(2.0)
        with lock:
            stream = heard[start:]
        result["hops"] = [a[0] for _, addr, a in stream if addr == "/vjgan/hop"]
        result["addresses"] = sorted({addr for _, addr, _ in stream})
        result["beats"] = [a for _, addr, a in stream if addr == "/vjgan/beat"][-5:]
        result["ndi"] = receive_ndi(seconds=8.0)
        time.sleep(max(0.0, SHOW_SECONDS - (time.monotonic() - first_hop)))
    finally:
        show.send_signal(signal.SIGINT)
        try:
            _, err = show.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            show.kill()
            _, err = show.communicate()
        server.shutdown()
        result["returncode"] = show.returncode
        result["stderr"] = err
        out.write_text(json.dumps(result, indent=1))


def receive_ndi(seconds: float) -> dict:
    import NDIlib as ndi
    import numpy as np

    assert ndi.initialize()
    receiver = ndi.recv_create_v3(ndi.RecvCreateV3(color_format=ndi.RECV_COLOR_FORMAT_RGBX_RGBA))
    ndi.recv_connect(receiver, ndi.Source(p_ndi_name="vjgan", p_url_address="127.0.0.1:5961"))
    got: dict = {"video": 0, "audio": 0, "sizes": [], "video_means": [], "audio_rms": [], "audio_format": None}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (got["video"] < 30 or got["audio"] < 30):
        kind, video, audio, _ = ndi.recv_capture_v2(receiver, 500)
        if kind == ndi.FRAME_TYPE_VIDEO:
            got["video"] += 1
            got["sizes"].append([video.xres, video.yres])
            got["video_means"].append(float(np.asarray(video.data)[..., :3].mean()))
            ndi.recv_free_video_v2(receiver, video)
        elif kind == ndi.FRAME_TYPE_AUDIO:
            got["audio"] += 1
            got["audio_format"] = [audio.sample_rate, audio.no_channels]
            got["audio_rms"].append(float(np.sqrt(np.mean(np.square(np.asarray(audio.data))))))
            ndi.recv_free_audio_v2(receiver, audio)
    ndi.recv_destroy(receiver)
    ndi.destroy()
    return got


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
