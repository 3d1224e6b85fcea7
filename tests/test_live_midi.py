"""The live show played from a MIDI controller: real JACK MIDI ports, a real window under Xvfb."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from jack_midi_fixtures import VirtualController, jack, jack_server, wait_until  # noqa: F401  (fixtures)
from xvfb_support import xvfb  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "data" / "conformance" / "sg2ada_64px.pkl"


@pytest.mark.slow
def test_knobs_and_pads_drive_the_show(xvfb, jack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from vjgan.config import load_preset, save_preset
    from vjgan.control.mapping import Control, Mapping
    from vjgan.live.app import LiveOptions, LiveShow

    monkeypatch.setenv("VJGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VJGAN_DATA_DIR", str(tmp_path / "data"))
    ctl = VirtualController()
    try:
        knob = Mapping(Control("cc", 21, 1), "absolute", param="gain.bass_expression", takeover="jump")
        pad = Mapping(Control("note", 36, 10), "trigger", action="recall-preset:drop")
        blackout = Mapping(Control("note", 37, 10), "trigger", action="blackout")
        import dataclasses

        preset = dataclasses.replace(load_preset("default"), midi=tuple(m.to_dict() for m in (knob, pad, blackout)))
        path = save_preset(preset, tmp_path / "with-midi.toml")
        state = tmp_path / "state.toml"
        show = LiveShow(LiveOptions(preset=str(path), model=str(MODEL), demo=True, midi=(ctl.name,), duration=30,
                                    operator=False, window_size=(320, 180), fresh=True, state_file=str(state)))
        seen: dict[str, object] = {}

        def play() -> None:
            wait_until(lambda: show.midi is not None and show.midi.connected_ports()["inputs"], timeout=30,
                       what="the show's MIDI input")
            ctl.send([0xB0, 21, 127])  # knob fully up: the gain's maximum
            wait_until(lambda: show.params.get("gain.bass_expression") == pytest.approx(2.0), what="the knob")
            seen["gain"] = show.params.get("gain.bass_expression")
            ctl.send([0x99, 37, 100], [0x89, 37, 0])  # blackout pad
            wait_until(lambda: show.params.get("blackout") == 1.0, what="the blackout pad")
            ctl.send([0x99, 36, 100], [0x89, 36, 0])  # preset pad
            wait_until(lambda: show.preset.name == "drop", what="the preset pad")
            wait_until(lambda: show.worker.scene.name == "drop", timeout=30, what="the new scene")
            seen["scene"] = show.worker.scene.name
            show.stop()

        player = threading.Thread(target=play, daemon=True)
        player.start()
        show.run()  # the main thread owns the window, as in `vjgan live`
        player.join(5)
        assert seen == {"gain": pytest.approx(2.0), "scene": "drop"}
        import tomllib

        saved = tomllib.loads(state.read_text())
        assert saved["preset"] == "drop"
        assert any(m.get("cc") == 21 for m in saved["midi"])  # the map survives in the running state
    finally:
        ctl.close()
