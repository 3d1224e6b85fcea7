"""Audio files, read a block at a time: a three-hour set never has to fit in memory.

libsndfile (soundfile) reads WAV, FLAC, OGG/Vorbis/Opus and, from version 1.1, MP3; it knows each
file's exact length and can seek. Anything else (AAC/M4A, WMA, ...) is decoded by FFmpeg through
PyAV, which vjgan already depends on for video; its length is what the container declares.

Every block passes through `silence_invalid` as it is decoded, so nothing after the reader (the
analysis, the soundtrack, the speakers) ever sees NaN or infinity; the reader counts what it
replaced. A file that cannot be opened raises `AudioFileError` with one line saying why. Damage
part-way: a packet FFmpeg cannot decode plays as silence for its duration (everything after keeps
its time); a decoder that gives up ends the file there. `notes()` says either in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from vjgan.audio.capture import quiet_stderr
from vjgan.audio.errors import AudioFileError
from vjgan.audio.samples import BadSampleReport, silence_invalid

MIN_RATE = 8000
BLOCK_FRAMES = 1 << 15  # decode this many frames at a time (0.7 s at 48 kHz; 256 KiB per stereo block)


class AudioReader:
    """One audio file, decoded in order: `read(n)` returns the next n frames (fewer only at the end).

    Open it with `open_audio`. Blocks are float32 [frames, channels]. Not thread-safe: one owner.
    """

    def __init__(self, path: Path, rate: int, channels: int, frames: int, blocks: Iterator[np.ndarray],
                 closer: Any, seek: Any = None):
        self.path = path
        self.rate = rate
        self.channels = channels
        # Length in frames as the file's header declares it (0: not declared). Decoders may give
        # slightly more or fewer (MP3 and AAC padding): plan with it, never index by it.
        self.frames = frames
        self.position = 0  # frames returned so far (plus skipped)
        self.bad_samples = 0  # invalid samples silenced so far
        self.damaged: Optional[str] = None  # why decoding stopped early, if it did
        self.damaged_packets = 0  # packets FFmpeg could not decode, played as silence
        self._blocks = blocks
        self._closer = closer
        self._seek = seek
        self._pending = np.zeros((0, channels), dtype=np.float32)

    @property
    def name(self) -> str:
        return self.path.name

    def _next_block(self) -> Optional[np.ndarray]:
        if self._blocks is None:
            return None
        try:
            with quiet_stderr():  # decoders print resync notes on bad data
                block = next(self._blocks)
        except StopIteration:
            self._blocks = None
            return None
        except Exception as exc:  # libsndfile's and FFmpeg's own error types
            self._blocks = None
            at = self.position + len(self._pending)
            # Said once, by whoever reads `notes()` (a file that fails on its first block is
            # refused by open_audio instead).
            self.damaged = f"damaged after {at / self.rate:.1f} s ({exc}); the rest is silence"
            return None
        block = np.ascontiguousarray(block, dtype=np.float32).reshape(-1, self.channels)
        self.bad_samples += silence_invalid(block)
        return block

    def read(self, n: int) -> np.ndarray:
        """The next `n` frames as float32 [m, channels]; m < n only at the end of the file."""
        parts = [self._pending]
        have = len(self._pending)
        while have < n:
            block = self._next_block()
            if block is None:
                break
            parts.append(block)
            have += len(block)
        data = parts[0] if len(parts) == 1 else np.concatenate(parts)
        out, self._pending = data[:n], data[n:]
        self.position += len(out)
        return out

    def skip(self, n: int) -> None:
        """Move `n` frames ahead without returning them (a seek where the decoder can)."""
        if n <= 0:
            return
        if self._seek is not None and n > len(self._pending) and self.position + n < self.frames:
            try:
                with quiet_stderr():
                    self._seek(self.position + n)
            except Exception:  # a decoder that cannot seek after all: read through instead
                pass
            else:
                self._pending = self._pending[:0]
                self.position += n
                return
        while n > 0:
            got = len(self.read(min(n, BLOCK_FRAMES)))
            if got == 0:
                return
            n -= got

    def blocks(self, n: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        while True:
            block = self.read(n)
            if len(block) == 0:
                return
            yield block

    def close(self) -> None:
        closer, self._closer = self._closer, None
        self._blocks = None
        if closer is not None:
            with quiet_stderr():
                try:
                    closer()
                except Exception:  # already closed, or the file went away: nothing left to release
                    pass

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def notes(self) -> list[str]:
        """Lines for the user about what was read so far: invalid samples silenced, damage."""
        out = []
        if self.bad_samples:
            report = BadSampleReport(self.name)
            report.total = self.bad_samples
            out.append(report.line())
        if self.damaged_packets:
            out.append(f"{self.name}: {self.damaged_packets} damaged packet(s) played as silence")
        if self.damaged:
            out.append(f"{self.name}: {self.damaged}")
        return out


def open_audio(path: str | Path, block_frames: int = BLOCK_FRAMES) -> AudioReader:
    """Open `path` for block-wise reading; AudioFileError (one line, with the reason) if it cannot be read."""
    p = Path(path).expanduser()
    if not p.exists():
        raise AudioFileError(f"audio file {str(p)!r} does not exist")
    if not p.is_file():
        raise AudioFileError(f"{str(p)!r} is not a file")
    reader = _open_soundfile(p, block_frames) or _open_av(p, block_frames)
    if reader is None:
        raise AudioFileError(f"cannot read audio file {str(p)!r}: not a supported or intact audio file "
                             "(neither libsndfile nor FFmpeg could decode it)")
    if reader.rate < MIN_RATE:
        reader.close()
        raise AudioFileError(f"audio file {str(p)!r} has a sample rate of {reader.rate} Hz; vjgan needs at least {MIN_RATE}")
    if not len(reader._pending):
        reader.close()
        raise AudioFileError(f"audio file {str(p)!r} contains no audio")
    return reader


def _open_soundfile(p: Path, block_frames: int) -> Optional[AudioReader]:
    try:
        import soundfile as sf

        with quiet_stderr():
            f = sf.SoundFile(str(p))
    except Exception:  # soundfile raises its own LibsndfileError / RuntimeError types
        # libsndfile's own messages are misleading here ("File does not exist or is not a
        # regular file" for a corrupt MP3): the caller says what is known instead.
        return None

    def blocks() -> Iterator[np.ndarray]:
        # Plain reads from the file's position (soundfile's own blocks() fixes its length at the
        # start and would not follow a seek).
        while True:
            block = f.read(block_frames, dtype="float32", always_2d=True)
            if len(block) == 0:
                return
            yield block

    reader = AudioReader(p, int(f.samplerate), int(f.channels), int(f.frames), blocks(), f.close,
                         seek=f.seek if f.seekable() else None)
    return _peeked(reader)


def _open_av(p: Path, block_frames: int) -> Optional[AudioReader]:
    import av

    try:
        with quiet_stderr():
            container = av.open(str(p))
    except Exception:  # PyAV's error types for unreadable input
        return None
    streams = [s for s in container.streams if s.type == "audio"]
    if not streams:
        container.close()
        return None
    stream = streams[0]
    ctx = stream.codec_context
    rate = int(ctx.sample_rate or 0)
    channels = int(ctx.layout.nb_channels) if ctx.layout is not None else 0
    if rate <= 0 or channels <= 0:
        container.close()
        return None
    if stream.duration is not None and stream.time_base is not None:
        frames = int(round(float(stream.duration * stream.time_base) * rate))
    elif container.duration is not None:
        frames = int(round(container.duration / 1e6 * rate))
    else:
        frames = 0  # not declared: known only once read to the end
    reader = AudioReader(p, rate, channels, frames, iter(()), container.close)
    reader._blocks = _av_blocks(container, stream, rate, channels, reader)
    return _peeked(reader)


def _av_blocks(container: Any, stream: Any, rate: int, channels: int, reader: AudioReader) -> Iterator[np.ndarray]:
    import av

    # Packed float32 at the stream's own rate and layout, whatever the codec decodes to.
    resampler = av.AudioResampler(format="flt")
    started = False
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.FFmpegError:
            # One damaged packet: its duration in silence, so everything after keeps its time.
            # (Before any audio it is dropped: a file of nothing but damage is refused as empty.)
            reader.damaged_packets += 1
            span = packet.duration * packet.time_base if packet.duration and packet.time_base else 0
            if span and started:
                yield np.zeros((int(round(float(span) * rate)), channels), dtype=np.float32)
            continue
        for frame in frames:
            for out in resampler.resample(frame):
                started = True
                yield out.to_ndarray().reshape(-1, channels)
    for out in resampler.resample(None):
        yield out.to_ndarray().reshape(-1, channels)


def _peeked(reader: AudioReader) -> Optional[AudioReader]:
    """The reader with its first block decoded, or None if that fails: a file that opens but does
    not decode is not intact. (No block and no error: the file is empty, which open_audio says.)"""
    block = reader._next_block()
    if block is not None:
        reader._pending = block
    elif reader.damaged is not None:
        reader.close()
        return None
    return reader


def count_frames(path: str | Path) -> int:
    """Frames in a file, by decoding it to the end (for streams whose header declares no length)."""
    with open_audio(path) as reader:
        reader.skip(1 << 62)
        return reader.position


def to_mono(data: np.ndarray, channel: Optional[int] = None) -> np.ndarray:
    """A 1-based channel, or the mean of all channels."""
    if data.ndim == 1:
        return data.astype(np.float32, copy=False)
    if channel is not None:
        check_channel(channel, data.shape[1])
        return np.ascontiguousarray(data[:, channel - 1])
    return data.mean(axis=1).astype(np.float32)


def check_channel(channel: Optional[int], channels: int) -> None:
    if channel is not None and not (1 <= channel <= channels):
        raise AudioFileError(f"the file has {channels} channel(s); --channel {channel} does not exist")


def read_mono(reader: AudioReader, channel: Optional[int] = None) -> np.ndarray:
    """The rest of the file as one mono float32 array (for sources that play it from memory)."""
    check_channel(channel, reader.channels)
    parts = [to_mono(block, channel) for block in reader.blocks()]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


class MonoStream:
    """Mono samples of a file in order, in any chunk size: what the analysis reads."""

    def __init__(self, reader: AudioReader, channel: Optional[int] = None):
        check_channel(channel, reader.channels)
        self.reader = reader
        self.channel = channel
        self.rate = reader.rate

    def read(self, n: int) -> np.ndarray:
        return to_mono(self.reader.read(n), self.channel)

    @property
    def bad_samples(self) -> int:
        return self.reader.bad_samples
