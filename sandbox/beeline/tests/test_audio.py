"""Recordings are real MP3: a browser (and an independent parser) accepts them."""

from __future__ import annotations

import io

import pytest
from mutagen.mp3 import MP3, BitrateMode

from sandbox.beeline import audio


@pytest.mark.parametrize("seconds", [1, 25.246, 62])
def test_mp3_parses_with_the_calls_duration(seconds):
    data = audio.mp3_silence(int(seconds * 1000))

    info = MP3(io.BytesIO(data)).info

    assert (info.version, info.layer) == (1, 3)
    assert info.sample_rate == 32_000
    assert info.bitrate == 32_000
    assert info.channels == 1
    assert info.bitrate_mode in (BitrateMode.CBR, BitrateMode.UNKNOWN)
    assert info.length == pytest.approx(seconds, abs=0.04)


def test_every_frame_has_a_valid_header():
    data = audio.mp3_silence(5_000)
    assert len(data) % audio.FRAME_BYTES == 0
    for offset in range(0, len(data), audio.FRAME_BYTES):
        header = int.from_bytes(data[offset : offset + 4], "big")
        assert header >> 21 == 0x7FF  # frame sync
        assert (header >> 19) & 0b11 == 0b11  # MPEG-1
        assert (header >> 17) & 0b11 == 0b01  # Layer III
        assert (header >> 12) & 0b1111 == 1  # 32 kbit/s
        assert (header >> 10) & 0b11 == 0b10  # 32 kHz


def test_size_is_capped_and_never_empty():
    assert len(audio.mp3_silence(10 * 3600 * 1000)) == audio.mp3_size(audio.MAX_SECONDS * 1000)
    assert len(audio.mp3_silence(0)) == audio.FRAME_BYTES
