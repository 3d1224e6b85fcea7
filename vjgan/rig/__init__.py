"""vjgan in the rig: OSC in and out, Ableton Link, video out (NDI, Syphon, Spout, v4l2) and recording.

Every input here becomes the show's own commands on the one path (`LiveShow.post`): OSC messages
and Link's tempo changes steer exactly as keys and pads do. Everything that goes out reads
hand-over points only (Features snapshots, the parameter store's change notices, the presented
picture read back once per drawn picture) and sends from its own supervised thread, so a slow
receiver costs dropped frames, never a stalled show. `docs/osc.md` and `docs/outputs.md` say how
to use it; `rig.py` wires it into a show.
"""
