"""Recording the show: the presented picture, effects included, with the sound the show hears.

`--record FILE` starts a take when the show starts; the `record` action (a key, a pad, OSC
`/vjgan/record`) starts and stops takes. Each take is its own supervised thread with a bounded
queue: the main loop offers each read-back picture and, if the queue is full (the encoder is
behind), the picture is dropped, counted and shown (an alarm line), never waited for.

The file's clock is the show's: a picture presented at time t goes to frame slot
round((t − t0)·fps) (slots in which nothing new was shown are skipped, so the file keeps real
time whatever the frame rate), and each audio hop goes where its samples were heard (ADC time),
so picture and sound are as far apart as the audience saw and heard them. Sound comes from the
audio engine's hop listener, the samples the analysis used.

Files are written by the offline renderer's `VideoFile` (H.264 + AAC by default; ProRes or HAP in
.mov where the encoder exists), as fragmented MP4/MOV under a temporary name beside the target:
a take is playable up to its last fragment even if the process dies, and on a clean stop (quit,
SIGINT/SIGTERM, a crash the show survives) it is finished and renamed. An existing file is never
overwritten: the take goes to the next free name (show-2.mp4, ...).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..alarms import WARNING
from ..errors import UserError
from ..render.codecs import VideoSettings
from .grab import Picture
from .outputs import AudioChunk

log = logging.getLogger(__name__)

QUEUE_DEPTH = 8  # pictures waiting for the encoder before new ones are dropped
REANCHOR_S = 0.05  # audio further than this from where its time says is put back in place
FINISH_TIMEOUT_S = 60.0
END_SOUND_WAIT_S = 0.5  # at most this long for the last picture's sound to arrive
DROPPED_ALARM = "recording-dropped"


# --- where takes go --------------------------------------------------------------------------------------

def free_path(wanted: Path, taken: frozenset[Path] = frozenset()) -> Path:
    """`wanted`, or the first of NAME-2.ext, NAME-3.ext ... that does not exist (nor is `taken`
    by a take still finishing)."""
    candidate, n = wanted, 2
    while candidate.exists() or candidate in taken:
        candidate = wanted.with_name(f"{wanted.stem}-{n}{wanted.suffix}")
        n += 1
    return candidate


def check_record_path(path: Path) -> Path:
    """One line now (at start), not a failed take later."""
    from ..render.codecs import container_for

    if path.is_dir():
        raise UserError(f"--record {path}: is a folder; give a file name such as {path / 'show.mp4'}")
    try:
        container_for(path)
    except UserError as e:
        raise UserError(str(e).replace("--out", "--record")) from None
    if not path.parent.is_dir():
        raise UserError(f"--record {path}: the folder {path.parent} does not exist")
    return path


# --- sound on the file's timeline --------------------------------------------------------------------------

class LiveSoundtrack:
    """The show's audio as it arrives, placed on the take's timeline; read by `VideoFile` (the
    `Soundtrack` interface: channels, end_after, read). Samples already encoded are let go."""

    def __init__(self, rate: int, channels: int, fps: Fraction) -> None:
        self.rate = rate
        self._channels = channels
        self.fps = fps
        self._guard = threading.Lock()
        self._arrived = threading.Condition(self._guard)
        self._raw: deque[AudioChunk] = deque(maxlen=3000)  # before t0 is known (30 s of hops at most)
        self._pieces: deque[tuple[int, np.ndarray]] = deque()  # (first sample's position, mono samples)
        self._t0: Optional[float] = None
        self._write_pos = 0  # where the next hop goes
        self._placed_any = False

    @property
    def channels(self) -> int:
        return self._channels

    def add(self, chunk: AudioChunk) -> None:
        with self._guard:
            if self._t0 is None:
                self._raw.append(chunk)
            else:
                self._place(chunk)
                self._arrived.notify_all()

    def wait_for(self, next_pts: int, timeout: float) -> bool:
        """Wait (briefly) until the sound for the first `next_pts` frame slots has arrived: at the
        end of a take the last picture's sound is still on its way from the capture thread."""
        need = int(next_pts * self.rate / self.fps)
        with self._arrived:
            return self._arrived.wait_for(lambda: self._write_pos >= need, timeout)

    def start(self, t0: float) -> None:
        """The file's time zero (the first picture's presentation time)."""
        with self._guard:
            self._t0 = t0
            for chunk in self._raw:
                self._place(chunk)
            self._raw.clear()

    def _place(self, chunk: AudioChunk) -> None:
        assert self._t0 is not None
        samples = chunk.samples
        pos = round((chunk.t_start - self._t0) * self.rate)
        if self._placed_any and abs(pos - self._write_pos) <= REANCHOR_S * self.rate:
            pos = self._write_pos  # contiguous: hop stamps jitter, the samples do not
        if pos < self._write_pos:  # overlaps what is placed (or is before t0): keep only the new part
            samples = samples[self._write_pos - pos:]
            pos = self._write_pos
        if len(samples):
            self._pieces.append((pos, samples))
            self._write_pos = pos + len(samples)
            self._placed_any = True

    def fill_to(self, next_pts: int) -> int:
        """End the sound with the pictures: what has not arrived for the first `next_pts` frame
        slots is silence (the audio source ended or lags at the very end of a take), so the
        file's two tracks are one length. Returns the samples of silence added."""
        need = int(next_pts * self.rate / self.fps)
        with self._guard:
            missing = max(0, need - self._write_pos)
            self._write_pos += missing  # `read` gives zeros where no piece lies
            return missing

    def end_after(self, next_pts: int) -> int:
        """Samples that may be written with the first `next_pts` frame slots: as far as the
        pictures go, and no further than the sound that has arrived."""
        with self._guard:
            return min(int(next_pts * self.rate / self.fps), self._write_pos)

    def read(self, pos: int, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.float32)
        with self._guard:
            while self._pieces and self._pieces[0][0] + len(self._pieces[0][1]) <= pos:
                self._pieces.popleft()  # encoded already
            for start, samples in self._pieces:
                if start >= pos + n:
                    break
                a, b = max(start, pos), min(start + len(samples), pos + n)
                out[a - pos:b - pos] = samples[a - start:b - start]
        np.clip(out, -1.0, 1.0, out=out)
        return np.repeat(out[None], self._channels, axis=0)


# --- one take ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordSettings:
    path: Path  # where the first take goes (later takes and existing names: the next free name)
    codec: Optional[str] = None  # an FFmpeg encoder or alias; None: the container's default (H.264)
    fps: int = 30


class Take:
    def __init__(self, settings: RecordSettings, audio_rate: Optional[int], alarms: Any,
                 taken: frozenset[Path] = frozenset()) -> None:
        self.settings = settings
        self.path = free_path(settings.path, taken)
        self.alarms = alarms
        self.queue: queue.Queue[Picture] = queue.Queue(maxsize=QUEUE_DEPTH)
        self.dropped = 0
        self.written = 0
        self.t0: Optional[float] = None
        self.audio_rate = audio_rate
        self.soundtrack = self._new_soundtrack()  # from now: the first picture's sound arrives before it
        self.task: Any = None
        self._file: Any = None
        self._last_pts = -1

    def offer(self, picture: Picture) -> None:
        """Main thread: never waits."""
        try:
            self.queue.put_nowait(picture)
        except queue.Full:
            self.dropped += 1
            self.alarms.raise_alarm(DROPPED_ALARM, f"RECORDING DROPPED {self.dropped} FRAMES (encoder behind)",
                                    WARNING)

    def _new_soundtrack(self) -> Optional[LiveSoundtrack]:
        if self.audio_rate is None:
            return None
        return LiveSoundtrack(self.audio_rate, 2, Fraction(self.settings.fps))

    def add_audio(self, chunk: AudioChunk) -> None:
        track = self.soundtrack
        if track is not None:
            track.add(chunk)

    def seconds(self) -> float:
        """The take's length: up to the end of its last frame slot."""
        return (self._last_pts + 1) / self.settings.fps

    # --- its thread ----------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        try:
            while True:
                try:
                    picture = self.queue.get(timeout=0.1)
                except queue.Empty:
                    if stop.is_set():
                        return
                    continue
                self._write(picture)
        finally:
            self._finish()

    def _write(self, picture: Picture) -> None:
        import av

        if self._file is None:
            self._open(picture)
        pts = round((picture.t - self.t0) * self.settings.fps)
        if pts <= self._last_pts:
            return  # a second picture within one frame slot: the file's rate keeps the first
        w, h = self._file.video.width, self._file.video.height  # a resized output is scaled to the take's size
        frame = av.VideoFrame.from_ndarray(picture.rows_top_first(), format="rgba")
        fmt = self._file.pix_fmt
        if fmt.startswith(("yuv", "nv")):
            frame = frame.reformat(width=w, height=h, format=fmt, dst_colorspace="itu709", dst_color_range="MPEG")
        else:
            frame = frame.reformat(width=w, height=h, format=fmt)
        self._file.write_frame(frame, pts)
        self._last_pts = pts
        self.written += 1

    def _open(self, picture: Picture) -> None:
        from ..render.codecs import AudioSettings, audio_settings, container_for, resolve_video_codec
        from ..render.encode import VideoFile

        spec = container_for(self.path)
        if spec.format in ("mp4", "mov"):
            # Fragments instead of an index at the end: playable up to the last fragment if the
            # process dies before the file is finished.
            spec = dataclasses.replace(spec, options={"movflags": "+frag_keyframe+empty_moov+default_base_moof"})
        codec = resolve_video_codec(self.settings.codec, spec)
        w, h = picture.size
        video = LiveVideoSettings(codec, w - w % 2, h - h % 2, Fraction(self.settings.fps),
                                  preset="veryfast" if codec == "libx264" else None)
        video.check()
        audio: Optional[AudioSettings] = None
        self.t0 = picture.t
        if self.soundtrack is not None:
            audio = audio_settings(spec.audio_codec, self.soundtrack.rate, 2)
            if audio.rate != self.soundtrack.rate:
                log.warning("recording: %s does not take %d Hz audio; this take has no sound",
                            spec.audio_codec, self.soundtrack.rate)
                audio, self.soundtrack = None, None
            else:
                self.soundtrack.start(self.t0)
        self._file = VideoFile(self.path, spec, video, self.soundtrack, audio,
                               metadata={"comment": "recorded live by vjgan"})
        log.info("recording to %s (%s%s)", self.path, video.describe(), ", with sound" if audio else "")

    def _finish(self) -> None:
        f, self._file = self._file, None
        if f is None:
            return
        if self.soundtrack is not None and not self.soundtrack.wait_for(self._last_pts + 1, END_SOUND_WAIT_S):
            missing = self.soundtrack.fill_to(self._last_pts + 1)
            log.info("recording: the last %.0f ms of sound did not arrive; the take ends in silence",
                     1000 * missing / self.soundtrack.rate)
        try:
            try:
                path = f.finish(replace_existing=False)
            except FileExistsError:  # somebody took the name meanwhile: the next free one
                from ..render.encode import move_no_clobber

                while True:
                    path = self.path = free_path(self.settings.path)
                    try:
                        move_no_clobber(f.tmp, path)
                        break
                    except FileExistsError:
                        continue
            log.info("recorded %.2f s (%d pictures, %d dropped) to %s", self.seconds(), self.written, self.dropped,
                     path)
        except (UserError, OSError) as e:
            log.error("recording %s: %s", self.path, e)


class LiveVideoSettings(VideoSettings):
    """The offline renderer's settings for a live take: a keyframe (and so a fragment) every two
    seconds, and x264 tuned for low latency (no lookahead: the encoder keeps up frame by frame)."""

    def options(self) -> dict[str, str]:
        opts = super().options()
        opts["g"] = str(int(self.fps) * 2)
        if self.codec == "libx264":
            opts["tune"] = "zerolatency"
        return opts


# --- takes, one after another ----------------------------------------------------------------------------------

class Recorder:
    def __init__(self, supervisor: Any, alarms: Any, settings: Optional[RecordSettings],
                 audio_rate: Callable[[], Optional[int]], default_dir: Callable[[], Path]) -> None:
        self.supervisor = supervisor
        self.alarms = alarms
        self.settings = settings
        self._audio_rate = audio_rate
        self._default_dir = default_dir
        self.take: Optional[Take] = None
        self.takes = 0
        self._finishing: list[Take] = []  # stopped takes whose threads may still be finishing their files

    @property
    def recording(self) -> bool:
        return self.take is not None

    def toggle(self, on: Optional[bool] = None) -> None:
        """Main thread (the record command)."""
        want = not self.recording if on is None else on
        if want and not self.recording:
            self.start()
        elif not want and self.recording:
            self.stop()

    def start(self) -> None:
        settings = self.settings
        if settings is None:  # the record action without --record: a dated file in the data folder
            folder = self._default_dir()
            folder.mkdir(parents=True, exist_ok=True)
            settings = RecordSettings(folder / time.strftime("vjgan-%Y%m%d-%H%M%S.mp4"))
        take = Take(settings, self._audio_rate(), self.alarms,
                    taken=frozenset(t.path for t in self._finishing if t.task.thread.is_alive()))
        take.task = self.supervisor.spawn("recorder", take.run, label="RECORDER", failing="not recording",
                                          on_restart=lambda: _next_file(take))
        self.take = take
        self.takes += 1
        self.alarms.clear(DROPPED_ALARM)

    def stop(self) -> None:
        """End the take (main thread, returns at once: the take's thread finishes the file)."""
        take, self.take = self.take, None
        if take is not None:
            take.task.stop()
            self._finishing.append(take)

    def close(self, timeout: float = FINISH_TIMEOUT_S) -> None:
        """At shutdown: end the take and wait until every take's file is finished."""
        self.stop()
        for take in self._finishing:
            if not take.task.join(timeout):
                log.error("the recording to %s did not finish within %.0f s", take.path, timeout)
        self._finishing = []

    def offer_picture(self, picture: Picture) -> None:
        take = self.take
        if take is not None:
            take.offer(picture)

    def offer_audio(self, chunk: AudioChunk) -> None:
        take = self.take  # one reference read: the capture thread never waits on the main thread
        if take is not None:
            take.add_audio(chunk)

    def status(self) -> str:
        take = self.take
        if take is None:
            return ""
        s = int(take.seconds())
        return f"REC {s // 60:02d}:{s % 60:02d} {take.path.name} · {take.written} frames · {take.dropped} dropped"


def _next_file(take: Take) -> None:
    """After a fault the take goes on in a new file (the old one was finished as far as it got)."""
    take.path = free_path(take.settings.path)
    take.soundtrack = take._new_soundtrack()
    take._last_pts = -1
    take.t0 = None
