"""Write the video file with PyAV: encoded pictures and the soundtrack, interleaved, then finished.

The file is written under a temporary name beside the output and renamed over it only when the
container is complete, so an earlier video at that path survives a failed render and nobody
ever sees half a file under the real name. A render stopped with Ctrl-C is finished the same
way: the encoders are flushed and the container closed after the last whole frame, with the
soundtrack cut at that frame's end.

Audio is encoded as the video advances (after each frame, every whole audio frame up to that
frame's end time), so the muxer interleaves the two without buffering the whole soundtrack and
an early stop leaves both streams the same length.

`EncoderThread` runs the writer beside the generator: PyAV releases the interpreter lock inside
FFmpeg, so encoding overlaps generation, and signals (Ctrl-C) only ever reach the main thread,
never interrupting the encoder between a packet and its mux.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import av
import av.logging
import numpy as np

from ..atomic import default_mode
from ..errors import UserError
from .codecs import AudioSettings, ContainerSpec, VideoSettings
from .soundtrack import Soundtrack

FRAME_THREADED = ("libx264", "libx264rgb")

# FFmpeg's enum values: BT.709 primaries, transfer and matrix; limited ("MPEG", "TV") range.
BT709 = 1
RANGE_LIMITED = 1


def _ffmpeg_reason(exc: BaseException, logs: list) -> str:
    """The most telling words about an FFmpeg failure: its last logged error, else the exception."""
    for _level, _name, message in reversed(logs):
        if message.strip():
            return message.strip()
    return str(exc).split("; last error log:")[0]


class EncoderStartError(UserError):
    """The encoder did not open with these settings (`reason`: FFmpeg's own words)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_output_path(out: Path, audio: Path, force: bool) -> None:
    """One line, before any work, when the output cannot (or must not) be written."""
    if out.exists() and out.is_dir():
        raise UserError(f"--out {out}: is a folder; give a file name such as {out / 'video.mp4'}")
    try:
        if out.exists() and audio.exists() and out.resolve() == audio.resolve():
            raise UserError(f"--out {out}: is the audio file itself; choose another name")
    except OSError:
        pass
    if out.exists() and not force:
        raise UserError(f"--out {out}: exists; pass --force to replace it")
    folder = out.parent
    if not folder.is_dir():
        raise UserError(f"--out {out}: the folder {folder} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{out.stem}-", suffix=".probe", dir=folder)
    except OSError as e:
        raise UserError(f"--out {out}: cannot write in {folder} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)


class VideoFile:
    """One output file being written. Not thread-safe: one owner (the encoder thread)."""

    def __init__(self, out: Path, container: ContainerSpec, video: VideoSettings, soundtrack: Soundtrack | None,
                 audio: AudioSettings | None, metadata: dict[str, str] | None = None) -> None:
        self.out = Path(out)
        self.video = video
        self.soundtrack = soundtrack
        self.frames_written = 0
        self._next_pts = 0  # the frame slot after the last picture written: the video's length
        self._audio_pos = 0
        self._closed = False
        self._c = None
        fd, tmp = tempfile.mkstemp(prefix=f".{self.out.stem}-", suffix=f".partial{self.out.suffix}",
                                   dir=self.out.parent)
        os.close(fd)
        os.chmod(tmp, default_mode())  # a video is a user's file: the umask's mode, not mkstemp's 0600
        self.tmp = Path(tmp)
        logs: list = []
        saved_level = av.logging.get_level()
        try:
            av.logging.set_level(av.logging.ERROR)  # only to catch FFmpeg's reason if opening fails
            with av.logging.Capture() as logs:
                self._open(container, video, audio, metadata or {})
        except UserError:
            self.abort()
            raise
        except Exception as e:
            self.abort()
            hint = "; a hardware encoder needs its GPU and driver" if _is_hardware(video.codec) else ""
            reason = _ffmpeg_reason(e, logs)
            raise EncoderStartError(f"--codec {video.codec}: the encoder cannot start here with {video.describe()} "
                                    f"({reason}){hint}", reason) from None
        finally:
            av.logging.set_level(saved_level)

    def _open(self, container: ContainerSpec, video: VideoSettings, audio: AudioSettings | None,
              metadata: dict[str, str]) -> None:
        self._c = av.open(str(self.tmp), "w", format=container.format, container_options=dict(container.options))
        for key, value in metadata.items():
            self._c.metadata[key] = value
        try:
            vs = self._c.add_stream(video.codec, rate=video.fps, options=video.options())
        except ValueError as e:  # the muxer does not take this codec
            raise UserError(f"--codec {video.codec}: {e}") from None
        vs.width, vs.height = video.width, video.height
        formats = [f.name for f in (av.codec.Codec(video.codec, "w").video_formats or [])]
        # 4:2:0 in planar form is what we hand over; nv12-only encoders (QSV) get it repacked.
        if not formats or "yuv420p" in formats:
            vs.pix_fmt = "yuv420p"
        else:
            vs.pix_fmt = "nv12" if "nv12" in formats else formats[0]
        cc = vs.codec_context
        if video.codec in FRAME_THREADED:
            # PyAV asks for slice threads, which x264 scales poorly; frame threads keep every core
            # busy (more frames in flight, which a file does not mind) and the output is the same.
            cc.thread_type = "FRAME"
        cc.time_base = 1 / video.fps
        cc.colorspace = cc.color_primaries = cc.color_trc = BT709
        cc.color_range = RANGE_LIMITED
        rate = video.bit_rate()
        if rate is not None:
            cc.bit_rate = rate
        self._vs = vs
        self._as = None
        if audio is not None and self.soundtrack is not None:
            layout = "mono" if audio.channels == 1 else "stereo"
            self._as = self._c.add_stream(audio.codec, rate=audio.rate, layout=layout)
        self._c.start_encoding()  # opens the encoders and writes the header: every failure shows now
        self._audio_frame = (self._as.codec_context.frame_size or 1024) if self._as is not None else 0

    @property
    def pix_fmt(self) -> str:
        """The encoder's pixel format (a frame in it is not converted again)."""
        return self._vs.pix_fmt

    # -- writing -------------------------------------------------------------------------------

    def write(self, yuv: np.ndarray) -> None:
        """One picture: uint8 [H·3/2, W] yuv420p (see vjgan.render.colour)."""
        self.write_frame(av.VideoFrame.from_ndarray(yuv, format="yuv420p"))

    def write_frame(self, frame: av.VideoFrame, pts: int | None = None) -> None:
        """One picture already in a frame (BT.709, limited range), at frame slot `pts` (default:
        the next one; a live recording skips the slots in which nothing new was shown)."""
        frame.colorspace = BT709
        frame.color_range = RANGE_LIMITED
        frame.pts = self._next_pts if pts is None else pts
        self._c.mux(self._vs.encode(frame))
        self.frames_written += 1
        self._next_pts = frame.pts + 1
        if self._as is not None:
            self._write_audio(self.soundtrack.end_after(self._next_pts), final=False)

    def _write_audio(self, end: int, final: bool) -> None:
        track = self.soundtrack
        size = self._audio_frame
        layout = "mono" if track.channels == 1 else "stereo"
        while self._audio_pos < end:
            n = min(size, end - self._audio_pos)
            if n < size and not final:
                return  # wait for a whole audio frame (only the last one may be short)
            frame = av.AudioFrame.from_ndarray(track.read(self._audio_pos, n), format="fltp", layout=layout)
            frame.sample_rate = track.rate
            frame.pts = self._audio_pos
            self._c.mux(self._as.encode(frame))
            self._audio_pos += n

    def finish(self, replace_existing: bool = True) -> Path:
        """Flush both encoders, close the container and move it to the output name (with
        `replace_existing=False`, never over a file that appeared there meanwhile: FileExistsError,
        and the finished file stays under its temporary name)."""
        if self._closed:
            return self.out
        try:
            if self._as is not None:
                self._write_audio(self.soundtrack.end_after(self._next_pts), final=True)
                self._c.mux(self._as.encode(None))
            self._c.mux(self._vs.encode(None))
            self._c.close()
            self._closed = True
            if replace_existing:
                os.replace(self.tmp, self.out)
            else:
                move_no_clobber(self.tmp, self.out)
        except FileExistsError:
            raise
        except Exception as e:  # a full disk, a vanished folder: say so, leave no partial file
            self.abort()
            raise UserError(f"cannot finish {self.out}: {getattr(e, 'strerror', None) or e}") from None
        return self.out

    def abort(self) -> None:
        """Give up: close what is open and remove the partial file (the output path is untouched)."""
        if not self._closed and self._c is not None:
            try:
                self._c.close()
            except Exception:
                pass
        self._closed = True
        self._discard()

    def _discard(self) -> None:
        try:
            self.tmp.unlink()
        except OSError:
            pass


def move_no_clobber(src: Path, dst: Path) -> None:
    """Rename `src` to `dst` unless `dst` exists (FileExistsError)."""
    try:
        os.link(src, dst)  # atomic: fails if the name is taken
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system (FAT, exFAT): check, then rename
        if dst.exists():
            raise FileExistsError(str(dst)) from None
        os.replace(src, dst)
        return
    os.unlink(src)


def _is_hardware(codec: str) -> bool:
    return any(codec.endswith(s) for s in ("_nvenc", "_qsv", "_amf", "_vaapi", "_videotoolbox", "_v4l2m2m", "_mf"))


class EncoderThread:
    """Encodes batches of pictures on its own thread, at most `depth` batches behind the generator."""

    def __init__(self, file: VideoFile, depth: int = 2, on_frame: Callable[[int], None] | None = None) -> None:
        self.file = file
        self.encode_s = 0.0  # time spent in conversion to frames, encoding and muxing
        self.error: BaseException | None = None
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=depth)
        self._on_frame = on_frame
        self._thread = threading.Thread(target=self._run, name="vjgan-render-encoder", daemon=True)
        self._thread.start()

    @property
    def frames_written(self) -> int:
        return self.file.frames_written

    def put(self, batch: np.ndarray) -> None:
        """Hand over uint8 [N, H·3/2, W]; waits while the encoder is `depth` batches behind."""
        while True:
            self._raise_if_failed()
            try:
                # A short timeout keeps the main thread responsive to Ctrl-C on every platform.
                self._queue.put(batch, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self.error is not None:
                continue  # drain without writing after a failure
            try:
                t0 = time.perf_counter()
                for picture in batch:
                    self.file.write(picture)
                    if self._on_frame is not None:
                        self._on_frame(self.file.frames_written)
                self.encode_s += time.perf_counter() - t0
            except BaseException as e:  # reported to the main thread at its next put/close
                self.error = e

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            e = self.error
            raise UserError(f"cannot write {self.file.out}: {getattr(e, 'strerror', None) or e}") from e

    def drain(self) -> int:
        """Encode everything handed over and stop the thread; returns the frames written."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self.error is not None:
            self.file.abort()
            self._raise_if_failed()
        return self.file.frames_written

    def close(self) -> Path:
        """Encode what was handed over, then finish the file (also after Ctrl-C)."""
        self.drain()
        t0 = time.perf_counter()
        path = self.file.finish()
        self.encode_s += time.perf_counter() - t0
        return path

    def abort(self) -> None:
        """Stop without a file (an error elsewhere): drop what is queued and remove the partial file."""
        self.error = self.error or RuntimeError("aborted")
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._queue.put(None)
        self._thread.join(timeout=30)
        self.file.abort()
