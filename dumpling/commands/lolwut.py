"""LOLWUT: computer art and the version (Redis's lolwut.c, lolwut5.c, lolwut6.c).

Without VERSION (and for versions other than 5 and 6) the answer is Redis 7.4's: the
version line alone.  ``LOLWUT VERSION 5 [cols] [squares-per-row] [squares-per-col]`` draws
Georg Nees's *Schotter* in Braille characters, ``LOLWUT VERSION 6 [cols] [rows]`` a
skyline in four terminal grays, both random where Redis's are.

Must not: take long: sizes are clamped exactly as Redis clamps them.
"""

from __future__ import annotations

import math
import random
from typing import Any

from dumpling import REDIS_VERSION
from dumpling.commands.common import to_int
from dumpling.commands.registry import command
from dumpling.protocol import Verbatim


class Canvas:
    """A width x height grid of dots (lwCanvas)."""

    def __init__(self, width: int, height: int, background: int = 0) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray([background]) * (width * height)

    def set(self, x: int, y: int, color: int = 1) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            self.pixels[x + y * self.width] = color

    def get(self, x: int, y: int) -> int:
        if 0 <= x < self.width and 0 <= y < self.height:
            return self.pixels[x + y * self.width]
        return 0

    def line(self, x1: int, y1: int, x2: int, y2: int) -> None:
        """Bresenham, as lwDrawLine."""
        dx, dy = abs(x2 - x1), abs(y2 - y1)
        sx = 1 if x1 < x2 else -1
        sy = 1 if y1 < y2 else -1
        err = dx - dy
        while True:
            self.set(x1, y1)
            if x1 == x2 and y1 == y2:
                break
            e2 = err * 2
            if e2 > -dy:
                err -= dy
                x1 += sx
            if e2 < dx:
                err += dx
                y1 += sy

    def square(self, x: int, y: int, size: float, angle: float) -> None:
        """lwDrawSquare: a square centred on x, y, rotated by ``angle``."""
        size = round(size / 1.4142135623)
        k = math.pi / 4 + angle
        points = []
        for _ in range(4):
            points.append((round(math.sin(k) * size + x), round(math.cos(k) * size + y)))
            k += math.pi / 2
        for j in range(4):
            (ax, ay), (bx, by) = points[j], points[(j + 1) % 4]
            self.line(ax, ay, bx, by)

    def render(self) -> str:
        """Braille characters, 2x4 dots each (renderCanvas)."""
        rows = []
        for y in range(0, self.height, 4):
            row = []
            for x in range(0, self.width, 2):
                bits = 0
                for bit, (ox, oy) in enumerate(((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3))):
                    if self.get(x + ox, y + oy):
                        bits |= 1 << bit
                row.append(chr(0x2800 + bits))
            rows.append("".join(row))
        text = "\n".join(rows)
        # Redis adds the newline after every row unless y == height-1 (then the last
        # row has none): heights that are not 1 more than a multiple of 4 end with one.
        if self.height and (self.height - 1) % 4 != 0:
            text += "\n"
        return text


def schotter(cols: int, per_row: int, per_col: int) -> Canvas:
    """lwDrawSchotter: rows further down are rotated and shifted more, at random."""
    width = cols * 2
    padding = 2 if width > 4 else 0
    side = (width - padding * 2) / per_row
    canvas = Canvas(width, int(side * per_col + padding * 2))
    for y in range(per_col):
        for x in range(per_row):
            sx = int(x * side + side / 2 + padding)
            sy = int(y * side + side / 2 + padding)
            angle = 0.0
            if y > 1:
                r1, r2, r3 = (random.random() / per_col * y for _ in range(3))
                r1 = -r1 if random.getrandbits(1) else r1
                r2 = -r2 if random.getrandbits(1) else r2
                r3 = -r3 if random.getrandbits(1) else r3
                angle = r1
                sx = int(sx + r2 * side / 3)
                sy = int(sy + r3 * side / 3)
            canvas.square(sx, sy, side, angle)
    return canvas


def _rand() -> int:
    """C's rand(): 0..RAND_MAX (2**31 - 1)."""
    return random.getrandbits(31)


def _skyscraper(canvas: Canvas, xoff: int, width: int, height: int, windows: bool, color: int) -> None:
    """generateSkyscraper: a block from the bottom, the roof two pixels narrower each side,
    windows (two pixels wide, one tall) in the other grays."""
    starty = canvas.height - 1
    endy = starty - height + 1
    for y in range(starty, endy - 1, -1):
        for x in range(xoff, xoff + width):
            if y == endy and (x <= xoff + 1 or x >= xoff + width - 2):
                continue
            pixel = color
            if windows and xoff + 1 < x < xoff + width - 2 and endy + 1 < y < starty - 1:
                relx, rely = x - (xoff + 1), y - (endy + 1)
                if (relx // 2) % 2 and rely % 2:
                    pixel = 1 + _rand() % 2
                    while pixel == color:
                        pixel = 1 + _rand() % 2
                    if relx % 2:
                        pixel = canvas.get(x - 1, y)
            canvas.set(x, y, pixel)


def skyline(cols: int, rows: int) -> Canvas:
    """generateSkyline: two gray background rows of towers, then the black foreground."""
    canvas = Canvas(cols, rows, 3)
    h = canvas.height
    for color in (2, 1):
        offset = -10
        while offset < canvas.width:
            offset += _rand() % 8
            width = 10 + _rand() % 9
            height = h // 2 + (_rand() % h) // (2 if color == 2 else 3)
            _skyscraper(canvas, offset, width, height, False, color)
            offset += width // 2 if color == 2 else width + 1
    offset = -10
    while offset < canvas.width:
        offset += _rand() % 8
        width = 5 + _rand() % 14
        if width % 4:
            width += width % 3
        height = h // 3 + (_rand() % h) // 2
        _skyscraper(canvas, offset, width, height, True, 0)
        offset += width + 5
    return canvas


_GRAYS = {0: "0;30;40m", 1: "0;90;100m", 2: "0;37;47m", 3: "0;97;107m"}


def _lolwut6(args: list[bytes]) -> str:
    sizes = [80, 20]
    for i, arg in enumerate(args[:2]):
        sizes[i] = to_int(arg)
    cols = min(max(sizes[0], 1), 1000)
    rows = min(max(sizes[1], 1), 1000)
    canvas = skyline(cols, rows)
    lines = []
    for y in range(canvas.height):
        lines.append("".join(f"\033[{_GRAYS.get(canvas.get(x, y), _GRAYS[0])} \033[0m" for x in range(canvas.width)))
    return ("\n".join(lines) + "\nDedicated to the 8 bit game developers of past and present.\n"
            f"Original 8 bit image from Plaguemon by hikikomori. Redis ver. {REDIS_VERSION}\n")


def _lolwut5(args: list[bytes]) -> str:
    sizes = [66, 8, 12]
    for i, arg in enumerate(args[:3]):
        sizes[i] = to_int(arg)
    cols = min(max(sizes[0], 1), 1000)
    per_row = min(max(sizes[1], 1), 200)
    per_col = min(max(sizes[2], 1), 200)
    art = schotter(cols, per_row, per_col).render()
    return f"{art}\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. {REDIS_VERSION}\n"


@command("lolwut", -1, "readonly fast", group="server", since="5.0.0",
         summary="Displays computer art and the Redis version", args="[VERSION version:integer]",
         complexity="")
def lolwut(c: Any, argv: list[bytes]) -> Any:
    version = REDIS_VERSION
    args = argv[1:]
    if len(argv) >= 3 and argv[1].lower() == b"version":
        version = "%d.0.0" % (to_int(argv[2]) & 0xFFFFFFFF)  # printed as unsigned int, as Redis does
        args = argv[3:]
    if (version[0] == "5" and version[1] == "." and version[2] != "9") or version.startswith("4.9"):
        return Verbatim(_lolwut5(args).encode("utf-8"))
    if (version[0] == "6" and version[1] == "." and version[2] != "9") or version.startswith("5.9"):
        return Verbatim(_lolwut6(args).encode("utf-8"))
    return Verbatim(f"Redis ver. {REDIS_VERSION}\n".encode())
