"""The dashboard in real headless Chromium: the server on loopback over a ledger filled
through real routed calls (stats_setup), a screenshot decoded with the stdlib (zlib) and
checked for the chart's lines, and the DOM as Chromium rendered it.

Needs Debian's chromium (`bash scripts/install-chromium.sh`; CI runs it first)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from ai_router.server.app import create_app
from ai_router.server.chart import BUDGET_COLOUR, SPEND_COLOUR
from server_setup import running_server
from stats_setup import filled_ledger

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed: run `bash scripts/install-chromium.sh`"
                             " (CI does before the tests)")
WIDTH, HEIGHT = 1000, 800
DAILY_USD = 0.004  # $0.00287 spent today: the spend line ends at 72% of the budget line


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    with filled_ledger(tmp_path_factory.mktemp("browser")) as ledger:
        yield ledger


@pytest.fixture
def url(filled, monkeypatch):
    app = create_app(filled.router(monkeypatch, daily_usd=DAILY_USD), warm_up=False)
    with running_server(app) as base:
        yield f"{base}/dashboard"


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium, kept off the network (loopback is all it may reach)."""
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1",
         f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", *args],
        capture_output=True, text=True, timeout=90, check=False)


def test_chromium_renders_the_chart_of_spend_against_the_budget(url, tmp_path):
    shot = tmp_path / "dashboard.png"

    result = chromium(tmp_path, f"--screenshot={shot}", url)

    assert shot.exists(), result.stderr[-2000:]
    width, height, pixels = decode_png(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    # not blank: plenty of ink, in many colours (text, cards, grid, lines)
    ink = sum(1 for p in pixels if p != (255, 255, 255))
    assert ink > width * height // 20
    assert len(set(pixels)) > 50
    budget = where(pixels, width, BUDGET_COLOUR)
    spend = where(pixels, width, SPEND_COLOUR)
    # the budget limit: one long horizontal run of its colour across the chart
    rows = {}
    for x, y in budget:
        rows.setdefault(y, []).append(x)
    budget_y, budget_xs = max(rows.items(), key=lambda row: len(row[1]))
    assert len(budget_xs) > 0.6 * 920
    # the spend line: drawn from midnight to noon (half the day) in steps, all below the
    # budget line (more y is lower on screen), and reaching 72% of the way up to it
    chart = [(x, y) for x, y in spend if y > budget_y - 40]  # not the legend above the chart
    xs, ys = [x for x, _ in chart], [y for _, y in chart]
    assert max(xs) - min(xs) > 0.45 * (max(budget_xs) - min(budget_xs))
    assert len(set(ys)) >= 4 * 3  # several levels, each about 3 pixels thick
    baseline = max(ys)
    assert min(ys) > budget_y
    assert (baseline - min(ys)) / (baseline - budget_y) == pytest.approx(0.72, abs=0.05)


def test_chromium_sees_the_numbers_in_the_rendered_page(url, tmp_path):
    result = chromium(tmp_path, "--dump-dom", url)

    dom = result.stdout
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in dom and 'id="spend-chart"' in dom
    assert "$0.002870" in dom and "budget $0.004000" in dom
    assert "saved today" in dom.lower() and "$0.005040" in dom


# -- the stdlib's share of image decoding ---------------------------------------------------

def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels (row by row) of an 8-bit, non-interlaced RGB or RGBA
    PNG, as Chromium writes screenshots."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(bytes(idat)), width * channels
    previous, pixels = bytearray(stride), []
    for row in range(height):
        start = row * (stride + 1)
        line = unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), previous,
                        channels)
        pixels += zip(line[0::channels], line[1::channels], line[2::channels], strict=True)
        previous = line
    return width, height, pixels


def unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> bytearray:
    """Undo one PNG row filter (None, Sub, Up, Average, Paeth)."""
    if kind == 2:
        return bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
    if kind in (1, 3, 4):
        for i in range(len(line)):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            else:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + best) & 255
    return line


def where(pixels: list[tuple[int, int, int]], width: int, colour: str,
          tolerance: int = 12) -> list[tuple[int, int]]:
    """(x, y) of every pixel within `tolerance` of `colour` on each channel."""
    want = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return [(i % width, i // width) for i, p in enumerate(pixels)
            if all(abs(a - b) <= tolerance for a, b in zip(p, want, strict=True))]
