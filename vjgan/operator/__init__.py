"""The operator console: the window on the laptop screen (Dear ImGui) and the optional HUD on the output.

    view.py          what one frame shows (immutable), numbers in words, the HUD's lines
    collect.py       reads the running show into a view (the only reader of live objects)
    state.py         selection and learn state; keys → commands (pure)
    runner.py        carries the commands out against the show; the status line
    placement.py     where the console opens (pure)
    browse.py        the model picker's folder listing and background `vjgan info`
    window.py        the glfw window with its ImGui context: shared GL objects, no vsync, events
    panels.py        one frame: alarm and status lines, the docked panels, the View menu
    figures.py       preview, the show's figures, the log
    params_panel.py  parameter pages: sliders, reset, learn, OSC addresses
    presets_panel.py the preset list: recall, save as, rename, morph time
    routes_panel.py  route editing
    model_panel.py   the model picker
    ui.py            colours, what widgets may ask for, where widgets were drawn
    output_hud.py    `--hud`: an ImGui overlay on the output picture
    console.py       what the live show calls: `start_console`, `present`, `layout`, `close`

See docs/operator.md. Importing this package loads nothing heavy; ImGui and GL load on use.
"""
