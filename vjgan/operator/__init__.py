"""The operator console: the window on the laptop screen and the optional HUD on the output.

    view.py        what one redraw shows (immutable), numbers in words
    collect.py     reads the running show into a view (the only reader of live objects)
    state.py       selection and learn state; keys and clicks → commands (pure)
    runner.py      carries the commands out against the show; the status line
    hud.py         layouts of the operator window and the output HUD (pure)
    text.py        the glyph atlas (Pillow's built-in font) and text quads
    gldraw.py      draws a layout with OpenGL in one call
    placement.py   where the operator window opens (pure)
    presets.py     Ctrl+S: a new user preset, written atomically, never over another
    window.py      the glfw window: shared GL objects, no vsync, events
    output_hud.py  `--hud`: text over the output picture
    console.py     what the live show calls: `start_console`, `present`, `close`

See docs/operator.md. Importing this package loads nothing heavy; the GL parts load on use.
"""
