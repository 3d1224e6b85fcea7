"""Load the GLSL files from `shaders/` and compile them once per GL context.

Each fragment shader is compiled as: the version line, `common.glsl` (shared inputs, uniforms
and colour helpers), then the file itself, with `#line` directives so a compile error names the
line of the file being edited. Programs are compiled when the renderer starts, never mid-show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import moderngl

from ..errors import UserError
from ..resources import data_dir

GLSL_VERSION = "#version 330 core"  # GL 3.3 core: Mesa llvmpipe, NVIDIA/AMD/Intel drivers, macOS
VERTEX_SHADER = "fullscreen.vert"
COMMON = "common.glsl"


def shader_dir() -> Path:
    return data_dir("shaders")


def read_shader(name: str) -> str:
    path = shader_dir() / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"shader {path} cannot be read ({e.strerror or e})") from None


def fragment_source(name: str) -> str:
    # "#line 1 1" numbers the file's own lines from 1 in source string 1 (common.glsl is 0).
    return f"{GLSL_VERSION}\n#line 1 0\n{read_shader(COMMON)}\n#line 1 1\n{read_shader(name)}"


def vertex_source() -> str:
    return f"{GLSL_VERSION}\n#line 1 1\n{read_shader(VERTEX_SHADER)}"


class Pass:
    """One compiled fragment shader drawn as a full-target triangle."""

    def __init__(self, ctx: moderngl.Context, fragment: str) -> None:
        self.name = fragment
        try:
            self.program = ctx.program(vertex_shader=vertex_source(), fragment_shader=fragment_source(fragment))
        except moderngl.Error as e:
            detail = " ".join(str(e).split())
            raise UserError(f"shader {fragment} does not compile: {detail}") from None
        self.vao = ctx.vertex_array(self.program, [])

    def set(self, name: str, value: Any) -> None:
        """Set a uniform if the compiled program kept it (unused uniforms are optimised away)."""
        uniform = self.program.get(name, None)
        if uniform is None:
            return
        if isinstance(value, (list, tuple)) and uniform.dimension == 1:
            # A float array. The compiler may shorten it to the highest index the shader reads,
            # so send exactly as many values as the compiled program kept.
            length = uniform.array_length
            values = [float(v) for v in value][:length]
            values += [0.0] * (length - len(values))
            value = values[0] if length == 1 else values
        uniform.value = value

    def draw(self) -> None:
        self.vao.render(moderngl.TRIANGLES, vertices=3)

    def release(self) -> None:
        self.vao.release()
        self.program.release()
