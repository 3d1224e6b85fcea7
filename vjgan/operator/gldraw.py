"""Draws a `Layout` with OpenGL: rectangles, atlas text and the preview, in one buffer and one call.

One small program does all three (a per-vertex mode picks solid colour, glyph alpha or the
preview picture), so a redraw is one buffer upload and one draw call whatever the layout holds.
The program is a user-interface shader, not a visual effect, so it lives here rather than in
`shaders/` beside the effects a preset can name.

A `Painter` belongs to one GL context and must be used while that context is current.
"""

from __future__ import annotations

from typing import Optional

import moderngl
import numpy as np

from .hud import Layout, Rect
from .text import GlyphAtlas

_VERTEX = """
#version 330 core
uniform vec2 u_size;
in vec2 in_pos;
in vec2 in_uv;
in vec4 in_color;
in float in_mode;
out vec2 v_uv;
out vec4 v_color;
flat out float v_mode;
void main() {
    vec2 ndc = in_pos / u_size * 2.0 - 1.0;
    gl_Position = vec4(ndc.x, -ndc.y, 0.0, 1.0);  // pixels count downwards, GL upwards
    v_uv = in_uv;
    v_color = in_color;
    v_mode = in_mode;
}
"""

_FRAGMENT = """
#version 330 core
uniform sampler2D u_atlas;
uniform sampler2D u_image;
in vec2 v_uv;
in vec4 v_color;
flat in float v_mode;
out vec4 frag_color;
void main() {
    if (v_mode < 0.5) {
        frag_color = v_color;                                            // solid
    } else if (v_mode < 1.5) {
        frag_color = vec4(v_color.rgb, v_color.a * texture(u_atlas, v_uv).r);  // glyph
    } else {
        frag_color = vec4(texture(u_image, v_uv).rgb, 1.0);              // preview
    }
}
"""

SOLID, GLYPH, IMAGE = 0.0, 1.0, 2.0
_FLOATS = 9  # x, y, u, v, r, g, b, a, mode
_CORNERS = np.array([0, 1, 2, 0, 2, 3])  # two triangles from the corners tl, tr, br, bl


def _quads(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, u0: np.ndarray, v0: np.ndarray,
           u1: np.ndarray, v1: np.ndarray, color: np.ndarray, mode: float) -> np.ndarray:
    """Vertices (6 per quad) of quads given by corner arrays; color is [n, 4]."""
    n = len(x0)
    corners = np.empty((n, 4, _FLOATS), np.float32)
    corners[:, :, 0] = np.stack([x0, x1, x1, x0], axis=1)
    corners[:, :, 1] = np.stack([y0, y0, y1, y1], axis=1)
    corners[:, :, 2] = np.stack([u0, u1, u1, u0], axis=1)
    corners[:, :, 3] = np.stack([v0, v0, v1, v1], axis=1)
    corners[:, :, 4:8] = color[:, None, :]
    corners[:, :, 8] = mode
    return corners[:, _CORNERS].reshape(-1, _FLOATS)


def layout_vertices(layout: Layout, atlas: GlyphAtlas, preview: bool) -> np.ndarray:
    """Every vertex of `layout` in drawing order: fills, then the preview, then text."""
    parts = []
    if layout.fills:
        r = np.array([(f.rect.x, f.rect.y, f.rect.right, f.rect.bottom) for f in layout.fills], np.float32)
        colors = np.array([f.color for f in layout.fills], np.float32)
        zeros = np.zeros(len(r), np.float32)
        parts.append(_quads(r[:, 0], r[:, 1], r[:, 2], r[:, 3], zeros, zeros, zeros, zeros, colors, SOLID))
    if preview and layout.preview is not None:
        p: Rect = layout.preview
        one = np.ones(1, np.float32)
        # GL textures hold their bottom row first: the top of the rectangle samples v = 1.
        parts.append(_quads(p.x * one, p.y * one, p.right * one, p.bottom * one, 0 * one, one, one, 0 * one,
                            np.ones((1, 4), np.float32), IMAGE))
    if layout.labels:
        # One concatenation for all text: a Python loop per glyph would cost milliseconds per redraw.
        quads = [atlas.quads(label.text) for label in layout.labels]
        counts = np.fromiter((len(q) for q in quads), np.int64, count=len(quads))
        if counts.sum():
            g = np.concatenate(quads)
            origin = np.repeat(np.array([(label.x, label.y) for label in layout.labels], np.float32), counts, axis=0)
            colors = np.repeat(np.array([label.color for label in layout.labels], np.float32), counts, axis=0)
            parts.append(_quads(g[:, 0] + origin[:, 0], g[:, 1] + origin[:, 1], g[:, 2] + origin[:, 0],
                                g[:, 3] + origin[:, 1], g[:, 4], g[:, 5], g[:, 6], g[:, 7], colors, GLYPH))
    return np.concatenate(parts) if parts else np.zeros((0, _FLOATS), np.float32)


class Painter:
    """The GL objects to draw layouts in one context: program, glyph atlas texture, vertex buffer."""

    def __init__(self, ctx: moderngl.Context, atlas: GlyphAtlas) -> None:
        self.ctx = ctx
        self.atlas = atlas
        self.program = ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        self.atlas_texture = self._atlas_texture(atlas)
        self._capacity = 0
        self.buffer: Optional[moderngl.Buffer] = None
        self.vao: Optional[moderngl.VertexArray] = None
        self._ensure(4096)
        self.vertices_drawn = 0

    def set_atlas(self, atlas: GlyphAtlas) -> None:
        """Draw text from another atlas (the output HUD follows the output's size)."""
        if atlas is self.atlas:
            return
        self.atlas_texture.release()
        self.atlas = atlas
        self.atlas_texture = self._atlas_texture(atlas)

    def _atlas_texture(self, atlas: GlyphAtlas) -> moderngl.Texture:
        texture = self.ctx.texture(atlas.size, 1, atlas.pixels.tobytes(), alignment=1)
        # Glyphs are placed on whole pixels: sampled 1:1, without filtering they stay sharp.
        texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        texture.repeat_x = texture.repeat_y = False
        return texture

    def _ensure(self, vertices: int) -> None:
        if vertices <= self._capacity:
            return
        capacity = max(vertices, 2 * self._capacity)
        if self.vao is not None:
            self.vao.release()
        if self.buffer is not None:
            self.buffer.release()
        self.buffer = self.ctx.buffer(reserve=capacity * _FLOATS * 4, dynamic=True)
        self.vao = self.ctx.vertex_array(self.program, [(self.buffer, "2f 2f 4f 1f", "in_pos", "in_uv", "in_color",
                                                         "in_mode")])
        self._capacity = capacity

    def draw(self, layout: Layout, framebuffer: moderngl.Framebuffer, preview: Optional[moderngl.Texture] = None,
             *, clear: bool = True) -> None:
        """Draw `layout` into `framebuffer` (its whole viewport), the preview from `preview`."""
        ctx = self.ctx
        w, h = layout.size
        framebuffer.use()
        ctx.viewport = (0, 0, w, h)
        if clear:
            ctx.clear(0.0, 0.0, 0.0, 1.0)
        vertices = layout_vertices(layout, self.atlas, preview is not None)
        self.vertices_drawn = len(vertices)
        if not len(vertices):
            return
        self._ensure(len(vertices))
        assert self.buffer is not None and self.vao is not None
        self.buffer.orphan(self._capacity * _FLOATS * 4)  # never wait for the GPU to finish the last redraw
        self.buffer.write(vertices.tobytes())
        self.atlas_texture.use(0)
        self.program["u_atlas"].value = 0
        if preview is not None and "u_image" in self.program:
            preview.use(1)
            self.program["u_image"].value = 1
        self.program["u_size"].value = (float(w), float(h))
        ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        try:
            self.vao.render(moderngl.TRIANGLES, vertices=len(vertices))
        finally:
            ctx.disable(moderngl.BLEND)  # the renderer that shares this context expects it off

    def release(self) -> None:
        for obj in (self.vao, self.buffer, self.atlas_texture, self.program):
            if obj is not None:
                obj.release()
        self.vao = self.buffer = None
