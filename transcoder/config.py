"""Transcoder settings, from the environment (validated when the app is created)."""

import os
import shutil

import imageio_ffmpeg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    transcode_timeout_seconds: float = Field(default=600, gt=0)
    mp3_bitrate: str = Field(default="128k", pattern=r"^[1-9][0-9]{0,2}k$")
    # The ceiling: a request may ask for less, never for more.
    max_duration_seconds: float = Field(default=10800, gt=0)
    ffmpeg_path: str | None = None
    # 16-bit PCM to CBR (most uploads) is encoded by LAME in this process, no ffmpeg started;
    # false sends everything through ffmpeg (transcoder/lame.py says what the path takes).
    encode_in_process: bool = True
    # PCM recordings at least this long are encoded as two segments on two cores at once (when
    # both encoder slots are free and the process may run on two CPUs), joined keeping LAME's
    # bit reservoir (transcoder/join.py); 0 = never. The joined MP3 has every input sample and
    # a single pass's quality (docs/benchmarks.md).
    parallel_encode_min_seconds: float = Field(default=30, ge=0)
    # Encodes running at once (an ffmpeg process is ~35 MB; a split long PCM encode runs two).
    max_concurrent_encodes: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # Requests that may wait for an encoder; one more is refused at once with 503 + Retry-After.
    max_queued_encodes: int = Field(default=8, ge=0)
    # Other transcoders that encode segments of a long PCM recording for this one, as a
    # comma-separated list of base URLs; a host name counts each of its addresses, this
    # replica's left out (transcoder/peers.py, docs/scaling.md). Empty: this one encodes alone.
    segment_peers: str = ""
    # A peer's segment must be back within this plus a tenth of its audio's duration, else the
    # recording is encoded here in one pass.
    segment_timeout_seconds: float = Field(default=10, gt=0)

    def peer_urls(self) -> list[str]:
        return [url.strip() for url in self.segment_peers.split(",") if url.strip()]

    def ffmpeg_executable(self) -> str:
        """FFMPEG_PATH if set, else ``ffmpeg`` on PATH, else the static build of imageio-ffmpeg."""
        if self.ffmpeg_path:
            return self.ffmpeg_path
        on_path = shutil.which("ffmpeg")
        if on_path:
            return on_path
        return str(imageio_ffmpeg.get_ffmpeg_exe())
