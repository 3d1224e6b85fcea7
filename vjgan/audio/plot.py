"""`vjgan analyze --plot`: how a preset's bands will react to a track, on one PNG.

matplotlib is an optional extra (`pip install 'vjgan[plot]'`); it is imported only here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vjgan.atomic import atomic_output
from vjgan.audio.offline import AnalysisResult


def plot_analysis(result: AnalysisResult, out: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    t = result.times
    nb = len(result.band_names)
    fig, (ax_b, ax_l, ax_t) = plt.subplots(3, 1, figsize=(14, 9), sharex=True,
                                            gridspec_kw={"height_ratios": [3, 1, 1]})
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, nb))
    # Band envelopes stacked bottom (sub) to top (high), onsets as ticks on each lane.
    for i, name in enumerate(result.band_names):
        base = i * 1.2
        ax_b.fill_between(t, base, base + result.bands[:, i], color=colors[i], alpha=0.6, lw=0)
        ons = result.onsets.get(name, [])
        ax_b.vlines(ons, base + 1.02, base + 1.15, color="crimson", lw=0.8)
    ax_b.set_yticks([i * 1.2 + 0.5 for i in range(nb)])
    ax_b.set_yticklabels([f"{n}\n{lo:g}-{hi:g} Hz" for n, (lo, hi) in zip(result.band_names, result.band_edges)])
    ax_b.set_ylim(-0.1, nb * 1.2)
    ax_b.set_title(f"{title}  —  band envelopes (red ticks: onsets), beats in grey" if title else "band envelopes")
    for ax in (ax_b, ax_l):
        ax.vlines(result.beats, 0, 1, transform=ax.get_xaxis_transform(), color="0.5", lw=0.6, alpha=0.7)
    ax_l.plot(t, result.loudness, color="k", lw=0.8)
    ax_l.set_ylabel("loudness")
    ax_l.set_ylim(0, 1.05)
    bpm = np.where(result.bpm > 0, result.bpm, np.nan)
    ax_t.plot(t, bpm, color="tab:blue", lw=1.2, label="BPM")
    ax_t.set_ylabel("BPM")
    ax_c = ax_t.twinx()
    ax_c.plot(t, result.confidence, color="tab:orange", lw=0.8, alpha=0.8, label="confidence")
    ax_c.set_ylim(0, 1.05)
    ax_c.set_ylabel("confidence")
    ax_t.set_xlabel("time (s)")
    if np.any(np.isfinite(bpm)):
        final = result.final_bpm
        ax_t.set_title(f"tempo: {final:.1f} BPM at the end", fontsize=10)
    fig.tight_layout()
    out = Path(out).expanduser()
    try:
        with atomic_output(out) as f:
            fig.savefig(f, dpi=100, format="png")
    finally:
        plt.close(fig)
