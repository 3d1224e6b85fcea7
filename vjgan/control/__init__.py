"""MIDI control: controllers drive the live parameters, trigger actions and send the clock.

`MidiController` (midi.py) is what the live show creates; `mapping.py` holds the mapping data
stored in presets; `actions.py` the registry of named actions; `cli.py` the `vjgan midi`
subcommands and the port listing of `vjgan devices`. See docs/midi.md.
"""
