"""MIDI control: controllers drive the live parameters, trigger actions and send the clock.

`commands.py` is the one way to steer the show: typed commands, the vocabulary of named actions
and the queue the show's main loop drains. `MidiController` (midi.py) is what the live show
creates: it turns what the controller sends into commands; `apply.py` applies parameter commands
(and is the sink where there is no show); `mapping.py` holds the mapping data stored in presets;
`cli.py` the `vjgan midi` subcommands and the port listing of `vjgan devices`. See docs/midi.md.
"""
