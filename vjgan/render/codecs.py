"""Which encoder, with which settings, in which container: decided and checked before any work.

`--codec` takes an FFmpeg encoder name (libx264, h264_nvenc, hevc_videotoolbox, …) or a short
alias (h264, hevc, av1, vp9, nvenc). `--quality` is the encoder's own constant-quality number
(x264/x265/VP9/SVT-AV1 crf, NVENC cq: lower is better), because that is the scale VJs already
know from ffmpeg; encoders without such a scale get a bit rate sized to the picture instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from ..errors import UserError

ALIASES = {
    "h264": "libx264", "x264": "libx264", "avc": "libx264",
    "h265": "libx265", "hevc": "libx265", "x265": "libx265",
    "vp9": "libvpx-vp9", "av1": "libsvtav1",
    "nvenc": "h264_nvenc", "h264-nvenc": "h264_nvenc", "hevc-nvenc": "hevc_nvenc",
}


@dataclass(frozen=True)
class ContainerSpec:
    format: str  # FFmpeg muxer
    video_codec: str  # default encoder
    audio_codec: str
    allowed_video: tuple[str, ...] = ()  # codec families the muxer takes ("" = any)
    options: dict[str, str] = field(default_factory=dict)


CONTAINERS = {
    # faststart moves the index to the front so a posted video starts playing before it has loaded.
    ".mp4": ContainerSpec("mp4", "libx264", "aac", options={"movflags": "+faststart"}),
    ".m4v": ContainerSpec("mp4", "libx264", "aac", options={"movflags": "+faststart"}),
    ".mov": ContainerSpec("mov", "libx264", "aac", options={"movflags": "+faststart"}),
    ".mkv": ContainerSpec("matroska", "libx264", "aac"),
    ".webm": ContainerSpec("webm", "libvpx-vp9", "libopus", allowed_video=("vp8", "vp9", "av1")),
}


@dataclass(frozen=True)
class CodecProfile:
    """How one family of encoders takes quality and speed settings."""

    quality_option: str | None  # None: no constant-quality scale; a bit rate is used
    default_quality: float | None
    preset_option: str | None
    default_preset: str | None
    options: dict[str, str] = field(default_factory=dict)
    zero_bit_rate: bool = False  # constant quality needs the bit rate target off
    presets: tuple[str, ...] = ()  # the values the preset option takes (checked before the encoder starts)


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
NVENC_PRESETS = ("p1", "p2", "p3", "p4", "p5", "p6", "p7")


def profile_for(codec: str) -> CodecProfile:
    if codec in ("libx264", "libx264rgb"):
        # crf 18 is visually near-lossless for generated pictures; "medium" is x264's own default.
        return CodecProfile("crf", 18.0, "preset", "medium", presets=X264_PRESETS)
    if codec == "libx265":
        return CodecProfile("crf", 20.0, "preset", "medium", {"x265-params": "log-level=error"}, presets=X264_PRESETS)
    if codec.endswith("_nvenc"):
        # VBR with a constant-quality target; p5 ("slow") is the quality preset that still keeps
        # up with generation on a datacentre GPU.
        return CodecProfile("cq", 21.0, "preset", "p5", {"rc": "vbr", "tune": "hq"}, zero_bit_rate=True,
                            presets=NVENC_PRESETS)
    if codec == "libvpx-vp9":
        return CodecProfile("crf", 31.0, "cpu-used", "2", {"row-mt": "1", "deadline": "good"}, zero_bit_rate=True,
                            presets=tuple(str(i) for i in range(9)))
    if codec == "libsvtav1":
        return CodecProfile("crf", 30.0, "preset", "8", presets=tuple(str(i) for i in range(14)))
    return CodecProfile(None, None, None, None)


def family(codec: str) -> str:
    """The format an encoder produces (h264, hevc, vp9, …), as FFmpeg names the decoder."""
    try:
        return av.codec.Codec(codec, "w").canonical_name
    except Exception:
        return codec


def container_for(out: Path) -> ContainerSpec:
    spec = CONTAINERS.get(out.suffix.lower())
    if spec is None:
        raise UserError(f"--out {out}: the file name must end in {', '.join(CONTAINERS)} "
                        f"(the container is chosen by the extension)")
    return spec


def video_encoders() -> list[str]:
    """Video encoders in this FFmpeg build (PyAV's wheels carry their own FFmpeg)."""
    names = []
    for name in sorted(av.codecs_available):
        try:
            codec = av.codec.Codec(name, "w")
        except Exception:
            continue
        if codec.type == "video" and codec.name == name:  # encoders by their own name, not format aliases
            names.append(name)
    return names


def hardware_first(container: ContainerSpec, gpu: bool) -> str | None:
    """The hardware encoder to try before the container's default, when rendering on an NVIDIA
    GPU and this FFmpeg build has NVENC for that format (whether the GPU has the encoder block —
    an H100 does not — shows only when it is opened; the caller falls back then)."""
    if not gpu:
        return None
    nvenc = {"h264": "h264_nvenc", "hevc": "hevc_nvenc"}.get(family(container.video_codec))
    try:
        av.codec.Codec(nvenc, "w")
    except Exception:
        return None
    return nvenc


def resolve_video_codec(name: str | None, container: ContainerSpec) -> str:
    """An encoder that exists in this build and fits the container; else one line saying why."""
    if name is None:
        return container.video_codec
    codec_name = ALIASES.get(name.lower(), name)
    try:
        codec = av.codec.Codec(codec_name, "w")
    except Exception:
        known = [n for n in video_encoders() if any(k in n for k in ("264", "265", "hevc", "vp9", "av1"))]
        raise UserError(f"--codec {name}: no such video encoder in this FFmpeg build "
                        f"(try one of: {', '.join(known)}; aliases: {', '.join(sorted(ALIASES))})") from None
    if codec.type != "video":
        raise UserError(f"--codec {name}: {codec_name} is an {codec.type} encoder, not a video encoder")
    if container.allowed_video and codec.canonical_name not in container.allowed_video:
        raise UserError(f"--codec {name}: a .{container.format} file cannot hold {codec.canonical_name} video "
                        f"(it takes {', '.join(container.allowed_video)})")
    return codec_name


@dataclass(frozen=True)
class VideoSettings:
    codec: str
    width: int
    height: int
    fps: Fraction
    quality: float | None = None  # None: the profile's default
    preset: str | None = None  # None: the profile's default

    @property
    def profile(self) -> CodecProfile:
        return profile_for(self.codec)

    def options(self) -> dict[str, str]:
        """Encoder options (FFmpeg's private options, as strings)."""
        p = self.profile
        opts = dict(p.options)
        if p.quality_option is not None:
            q = self.quality if self.quality is not None else p.default_quality
            opts[p.quality_option] = f"{q:g}"
        preset = self.preset or p.default_preset
        if preset is not None and p.preset_option is not None:
            opts[p.preset_option] = preset
        return opts

    def bit_rate(self) -> int | None:
        """Target bit rate: None (the encoder's own) or 0 (off) under constant quality, else
        ~0.15 bit per pixel per frame, generous enough for GAN texture."""
        p = self.profile
        if p.quality_option is not None:
            return 0 if p.zero_bit_rate else None
        return int(0.15 * self.width * self.height * float(self.fps))

    def describe(self) -> str:
        p = self.profile
        parts = [self.codec]
        if p.preset_option is not None:
            parts.append(f"{p.preset_option} {self.preset or p.default_preset}")
        if p.quality_option is not None:
            q = self.quality if self.quality is not None else p.default_quality
            parts.append(f"{p.quality_option} {q:g}")
        else:
            parts.append(f"{(self.bit_rate() or 0) / 1e6:.1f} Mbit/s")
        return ", ".join(parts)

    def check(self) -> None:
        p = self.profile
        if self.quality is not None and p.quality_option is None:
            raise UserError(f"--quality: {self.codec} has no constant-quality scale vjgan knows; "
                            f"leave --quality out (a bit rate sized to the picture is used)")
        if self.preset is not None and p.preset_option is None:
            raise UserError(f"--encoder-preset: {self.codec} takes no preset vjgan knows; leave it out")
        if self.preset is not None and p.presets and self.preset not in p.presets:
            raise UserError(f"--encoder-preset {self.preset}: {self.codec} takes {', '.join(p.presets)}")


@dataclass(frozen=True)
class AudioSettings:
    codec: str
    rate: int  # encoder sample rate
    channels: int  # 1 or 2


def audio_settings(codec_name: str, source_rate: int, source_channels: int) -> AudioSettings:
    """The soundtrack's encoder settings: the source's rate where the codec takes it, else 48 kHz."""
    codec = av.codec.Codec(codec_name, "w")
    rates = list(codec.audio_rates or [])
    rate = source_rate if (not rates or source_rate in rates) else (48000 if 48000 in rates else max(rates))
    return AudioSettings(codec_name, rate, 1 if source_channels == 1 else 2)
