"""Playable MP3 bytes for emulated recordings, made without any external tool.

Every frame is a valid MPEG-1 Layer III frame (32 kHz, 32 kbit/s, mono, no CRC) whose side
information declares zero bits of main data: decoders (browsers included) play it as silence.
At 32 kbit/s each frame is exactly 144 bytes and lasts 1152 / 32000 s = 36 ms, so the file's
duration is what the call's was, within one frame.
"""

from __future__ import annotations

SAMPLE_RATE = 32_000
BITRATE = 32_000
SAMPLES_PER_FRAME = 1152
FRAME_BYTES = 144 * BITRATE // SAMPLE_RATE  # 144
# Longer calls get a recording of this length: the sandbox keeps files small.
MAX_SECONDS = 600

# Sync word + MPEG-1 + Layer III + no CRC; bitrate index 1 (32k), sample rate index 2 (32k),
# no padding; mono, no emphasis.
_HEADER = bytes([0xFF, 0xFB, 0x18, 0xC0])
# Mono side information is 17 bytes; all zero = main_data_begin 0, part2_3_length 0.
_FRAME = _HEADER + bytes(FRAME_BYTES - len(_HEADER))


def mp3_frame_count(duration_ms: int) -> int:
    seconds = min(max(duration_ms, 0) / 1000, MAX_SECONDS)
    return max(1, round(seconds * SAMPLE_RATE / SAMPLES_PER_FRAME))


def mp3_size(duration_ms: int) -> int:
    return mp3_frame_count(duration_ms) * FRAME_BYTES


def mp3_silence(duration_ms: int) -> bytes:
    """A silent MP3 of ``duration_ms`` (capped at MAX_SECONDS, at least one frame)."""
    return _FRAME * mp3_frame_count(duration_ms)
