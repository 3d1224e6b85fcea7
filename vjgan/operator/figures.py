"""The panels that show rather than steer: the preview, the show's figures (the HUD), the log.

The HUD's buttons (blackout, freeze, tap...) post the same named actions as the keys and pads.
"""

from __future__ import annotations

import logging
import math
from typing import Optional

from imgui_bundle import imgui

from ..control.commands import action_command
from .ui import ACCENT, BAD, DIM, GOOD, TEXT, WARN, WELL, Actions, Where, badge, light, u32
from .view import OperatorView, activities, fmt, resolution_text

HUD_BUTTONS = (("Blackout (B)", "blackout"), ("Freeze (Space)", "freeze"), ("Tap (T)", "tap-tempo"),
               ("Fullscreen (F)", "fullscreen"), ("New keyframe", "new-keyframe"))


def fit_aspect(box_w: float, box_h: float, aspect: float) -> tuple[float, float]:
    """The largest width × height of ratio `aspect` inside a box (letterboxed)."""
    if box_w <= 0 or box_h <= 0 or not aspect > 0:
        return 0.0, 0.0
    w = min(box_w, box_h * aspect)
    return w, w / aspect


def preview(view: OperatorView, texture: Optional[tuple[int, bool]], where: Where) -> None:
    """The output's presented picture, with the output's aspect, centred in the panel."""
    avail = imgui.get_content_region_avail()
    aspect = view.output_size[0] / max(1, view.output_size[1])
    w, h = fit_aspect(avail.x, avail.y, aspect)
    if texture is None or w < 1 or h < 1:
        imgui.text_colored(imgui.ImVec4(*DIM), "no picture yet")
        return
    glo, upside_down = texture
    pos = imgui.get_cursor_pos()
    imgui.set_cursor_pos(imgui.ImVec2(pos.x + (avail.x - w) / 2, pos.y + (avail.y - h) / 2))
    uv0, uv1 = ((0.0, 1.0), (1.0, 0.0)) if upside_down else ((0.0, 0.0), (1.0, 1.0))
    imgui.image(imgui.ImTextureRef(glo), imgui.ImVec2(w, h), imgui.ImVec2(*uv0), imgui.ImVec2(*uv1))
    where.mark("preview")


def show_figures(view: OperatorView, actions: Actions, where: Where) -> None:
    """Preset and output states, the buttons a set needs, figures, tempo, meters, activity."""
    imgui.text(f"preset {view.preset or '-'}")
    for flag, on, color in (("BLACKOUT", view.blackout, BAD), ("FREEZE", view.freeze, ACCENT),
                            ("FULLSCREEN", view.output_fullscreen, DIM)):
        if on:
            imgui.same_line()
            badge(flag, color)
    for i, (label, action) in enumerate(HUD_BUTTONS):
        if i:
            imgui.same_line()
        if imgui.small_button(label):
            actions.post(action_command(action))
        where.mark(f"action:{action}")
    imgui.separator()
    step = "-" if view.budget_step is None else view.budget_step
    imgui.text(f"output {fmt(view.display_fps, 1)} fps    generation {fmt(view.generation_fps, 1)} fps")
    imgui.text(f"generation {fmt(view.generation_ms, 1, ' ms')} (latent {fmt(view.latent_ms, 1, ' ms')})")
    imgui.text(f"frame {resolution_text(view.resolution)}, budget step {step}    "
               f"sound to screen {fmt(view.latency_ms, 0, ' ms')}")
    source = "" if view.tempo_source in ("", "none") else f" ({view.tempo_source})"
    imgui.text(f"BPM {fmt(view.bpm, 1)}{source}")
    imgui.same_line()
    light(view.beat_flash, WARN)
    imgui.same_line()
    imgui.progress_bar(min(1.0, max(0.0, view.beat_phase)), imgui.ImVec2(-1, imgui.get_text_line_height() * 0.5), "")
    meters(view)
    for a in activities(view):
        light(a.lit)
        imgui.same_line()
        imgui.text_colored(imgui.ImVec4(*(TEXT if a.enabled else DIM)), f"{a.name}: {a.text}")


def level_color(level: float) -> tuple[float, float, float, float]:
    return GOOD if level < 0.7 else WARN if level < 0.9 else BAD


def meters(view: OperatorView) -> None:
    """Every band after automatic gain, and loudness, as bars with their names."""
    if not view.bands:
        return
    levels = [(b.name, b.level) for b in view.bands] + [("loud", view.loudness)]
    line = imgui.get_text_line_height()
    avail = imgui.get_content_region_avail().x
    gap = 4.0
    bar_w = max(4.0, (avail - gap * (len(levels) - 1)) / len(levels))
    bar_h = 3 * line
    draw = imgui.get_window_draw_list()
    top = imgui.get_cursor_screen_pos()
    for i, (name, level) in enumerate(levels):
        level = min(1.0, max(0.0, level if math.isfinite(level) else 0.0))
        x = top.x + i * (bar_w + gap)
        draw.add_rect_filled(imgui.ImVec2(x, top.y), imgui.ImVec2(x + bar_w, top.y + bar_h), u32(WELL))
        draw.add_rect_filled(imgui.ImVec2(x, top.y + bar_h * (1 - level)), imgui.ImVec2(x + bar_w, top.y + bar_h),
                             u32(level_color(level)))
        label_w = imgui.calc_text_size(name).x
        draw.add_text(imgui.ImVec2(x + max(0.0, (bar_w - label_w) / 2), top.y + bar_h), u32(DIM), name)
    if not view.audio_connected:
        draw.add_text(imgui.ImVec2(top.x + 4, top.y + 2), u32(BAD), "NO AUDIO INPUT")
    elif view.gated:
        draw.add_text(imgui.ImVec2(top.x + 4, top.y + 2), u32(DIM), "gate (silence)")
    imgui.dummy(imgui.ImVec2(avail, bar_h + line + 2))


_LEVEL_COLOURS = ((logging.ERROR, BAD), (logging.WARNING, WARN), (logging.INFO, TEXT))


def log_pane(view: OperatorView, state: dict) -> None:
    """The newest log lines (the whole log is in the data folder), following the end unless
    the operator scrolled up to read."""
    imgui.begin_child("log-lines", imgui.ImVec2(0, 0), 0, imgui.WindowFlags_.horizontal_scrollbar.value)
    try:
        for level, text in view.log:
            color = next((c for threshold, c in _LEVEL_COLOURS if level >= threshold), DIM)
            imgui.text_colored(imgui.ImVec4(*color), text)
        newest = (len(view.log), view.log[-1] if view.log else None)
        follow = state.get("follow", True)
        if newest != state.get("newest") and follow:
            imgui.set_scroll_here_y(1.0)
        else:  # the operator's own scrolling decides whether the pane follows new lines
            follow = imgui.get_scroll_y() >= imgui.get_scroll_max_y() - 1
        state["newest"], state["follow"] = newest, follow
    finally:
        imgui.end_child()
