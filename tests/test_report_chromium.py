"""The HTML report in a real browser: headless Chromium (Debian's package; `make test` installs
it) screenshots it and prints it to PDF. The screenshot is kept as a test artifact
($OTPATCH_TEST_ARTIFACTS, else tests/artifacts/)."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from otpatch.engine.report.html import html

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "report"
MISSING = "headless Chromium not installed: make test installs Debian's chromium"
WIDTH, HEIGHT = 1280, 2000
TIMEOUT = 60  # seconds per Chromium call; then its whole process group is killed
ROWS_DECODED = 160  # the top of the page: the kicker and the title


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return found


def run_chromium(chromium: str, tmp_path: Path, page: Path, *action: str) -> None:
    """One headless Chromium call on `page`, with a fresh profile, no network chatter."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    argv = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}", *action,
            page.as_uri()]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the browser's helpers too
        proc.communicate()
        pytest.fail(f"chromium {' '.join(action)} did not finish in {TIMEOUT}s")
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    doc = json.loads((FIXTURES / "sample-rolled-back.json").read_text())
    page = tmp_path_factory.mktemp("report") / "sample-rolled-back.html"
    page.write_text(html(doc), encoding="utf-8")
    return page


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks, at = [], 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunks.append((kind, data[at + 8:at + 8 + length]))
        at += 12 + length
    return chunks


def png_top_rows(data: bytes, rows: int) -> tuple[int, int, list[bytes]]:
    """Width, height and the first `rows` scanlines, unfiltered (8-bit RGB or RGBA only)."""
    chunks = png_chunks(data)
    assert chunks[0][0] == b"IHDR"
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert depth == 8 and colour in (2, 6), f"bit depth {depth}, colour type {colour}"
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompressobj().decompress(
        b"".join(body for kind, body in chunks if kind == b"IDAT"), (stride + 1) * rows)
    lines, previous = [], bytes(stride)
    for r in range(rows):
        kind, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        unfilter(kind, line, previous, bpp)
        lines.append(bytes(line))
        previous = line
    return width, height, lines


def unfilter(kind: int, line: bytearray, previous: bytes, bpp: int) -> None:
    """PNG filter types 0-4, undone in place."""
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF


def keep_artifact(path: Path) -> Path:
    folder = Path(os.environ.get("OTPATCH_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(path, folder / path.name))


def test_screenshot_shows_the_report(chromium, report_page, tmp_path):
    shot = tmp_path / "report-sample-rolled-back.png"
    run_chromium(chromium, tmp_path, report_page, f"--screenshot={shot}",
                 f"--window-size={WIDTH},{HEIGHT}")
    width, height, rows = png_top_rows(shot.read_bytes(), ROWS_DECODED)
    assert (width, height) == (WIDTH, HEIGHT)
    bpp = len(rows[0]) // width
    pixels = Counter(row[i:i + 3] for row in rows for i in range(0, len(row), bpp))
    background, count = pixels.most_common(1)[0]
    assert background == b"\xff\xff\xff", "the page is not black on white"
    inked = sum(pixels.values()) - count
    assert inked > 2000, f"the top of the page is nearly blank ({inked} pixels not white)"
    assert any(sum(p) < 150 for p in pixels), "no dark text at the top of the page"
    assert keep_artifact(shot).stat().st_size == shot.stat().st_size


def test_prints_to_pdf(chromium, report_page, tmp_path):
    pdf = tmp_path / "report.pdf"
    run_chromium(chromium, tmp_path, report_page, f"--print-to-pdf={pdf}",
                 "--no-pdf-header-footer")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", data))
    assert pages >= 1, "the PDF has no page object"
    assert data.rstrip().endswith(b"%%EOF")
