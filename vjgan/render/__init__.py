"""Offline rendering: an audio file becomes a video with its soundtrack (`vjgan render`).

The live show's analyzer, latent engine and display chain, driven by the file's clock instead of
the wall clock, so the video is what the show would have played, frame-exact and repeatable.
Modules, each with one job:

    options     RenderOptions and the parsing of --fps, --size, --start
    timeline    frame times, hops heard per frame, audio samples per frame (exact arithmetic)
    feed        the analyzer hop by hop over the file
    motion      the latent engine stepped on the file's clock
    generate    batched synthesis
    post        fit/fill/stretch and post effects: the live renderer on EGL, or tensors
    colour      RGB → BT.709 4:2:0
    codecs      encoder choice, quality and presets; containers
    soundtrack  the audio beside the frames, at the encoder's rate
    encode      PyAV writer (temp file, interleaved mux, finish) and its thread
    stages      the render's steps on their own threads, joined by bounded queues
    progress    the progress line
    render      preparation (every check first) and the render loop
    cli         `vjgan render` arguments (add_render_parser)
    bench       `python -m vjgan.render.bench`: render speed for docs/benchmarks.md
"""

from .options import RenderOptions

__all__ = ["RenderOptions", "render"]


def render(options: RenderOptions, log=None):
    """Render `options` (see vjgan.render.render.render)."""
    from .render import render as _render

    return _render(options) if log is None else _render(options, log)
