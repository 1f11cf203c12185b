"""Draws the widget's logos (docs/amocrm-api.md §9 sizes) as real PNGs with nothing but zlib.

Run ``python -m crm.widget_images`` to regenerate ``crm/widget/images/``; the PNGs are committed
so the build does not depend on this drawing code. The picture: Beeline's yellow with black
stripes (the brand's look) and a white disc holding a dark handset-shaped bar.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

IMAGE_SIZES: dict[str, tuple[int, int]] = {
    "logo_main.png": (400, 272),
    "logo_small.png": (108, 108),
    "logo.png": (130, 100),
    "logo_medium.png": (240, 84),
    "logo_min.png": (84, 84),
    "logo_dp.png": (174, 109),
}
YELLOW = (255, 190, 0)
BLACK = (30, 30, 30)
WHITE = (255, 255, 255)


def _pixel(x: int, y: int, width: int, height: int) -> tuple[int, int, int]:
    cx, cy = width / 2, height / 2
    radius = min(width, height) * 0.36
    dx, dy = x + 0.5 - cx, y + 0.5 - cy
    if dx * dx + dy * dy <= radius * radius:
        # A tilted bar with rounded ends, reading as a handset inside the disc.
        u = (dx + dy) / 1.4142
        v = (dx - dy) / 1.4142
        if abs(v) <= radius * 0.18 and abs(u) <= radius * 0.62:
            return BLACK
        if abs(u) > radius * 0.45 and abs(v) <= radius * 0.34 and abs(u) <= radius * 0.7:
            return BLACK
        return WHITE
    stripe = max(4, height // 9)
    return BLACK if (y // stripe) % 4 == 3 else YELLOW


def png_bytes(width: int, height: int) -> bytes:
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            rows.extend(_pixel(x, y, width, height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def images_write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (width, height) in IMAGE_SIZES.items():
        path = directory / name
        path.write_bytes(png_bytes(width, height))
        written.append(path)
    return written


if __name__ == "__main__":
    images_write(Path(__file__).resolve().parent / "widget" / "images")
