"""The lot's PDF, rendered to pages (poppler's pdftoppm) and read back (pdftotext): what a
reviewer files, looked at; its pages kept in var/test-artifacts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from PIL import Image

from daemon.reports.analysis import analyse
from daemon.reports.lot import lot_result
from daemon.reports.lot_pdf import save_lot_pdf
from daemon.reports.lot_plan import plan_of
from daemon.reports.lot_types import FileCheck
from daemon.reports.specimens import Piece, specimens_of
from drivers.units import KPA_PER_ATM
from simulators.balloon import Balloon
from tests.unit.test_lot_report import specimen

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"


def test_the_lot_report_pdf_has_its_pages_and_says_its_verdicts(tmp_path: Path) -> None:
    assert shutil.which("pdftoppm"), "make test installs Debian's poppler-utils"
    traces = [specimen(f"b{k:02d}", "burst", k, rbp_atm=8.0, shift_s=100 * k) for k in range(10)]
    traces += [specimen(f"c{k}", "compliance", 200 + k, rbp_atm=4.0, hold_s=1.0,
                        shift_s=2000 + 100 * k) for k in range(3)]  # fmt: skip
    traces.append(specimen("f0", "fatigue", 100, rbp_atm=8.0, cycles=3, hold_s=0.5, shift_s=3000))
    balloon = Balloon()
    pieces = []
    for t in traces:
        diameters = [(x, balloon.outer_diameter_mm(p / KPA_PER_ATM))
                     for x, p in zip(t.time_ns, t.pressure_kpa, strict=True)]  # fmt: skip
        files = (FileCheck(f"rec/{t.session}.mcap", "5e" * 32, "bench", "m.json", "5e" * 32),)
        pieces.append(Piece(analyse(t), files, diameters))
    plan = plan_of([], {"rbp_atm": 8.0, "cycles": 3, "nominal_atm": 1.0, "fatigue_atm": 8.0})
    lot = lot_result("L9", specimens_of(pieces, plan, None), plan, pvlog_version="0.1.0")
    about = {"made_ns": 1_765_000_000 * 10**9, "version": "pvlog 0.1.0", "operator": "ann",
             "devices": ["bench PVS-1 SN42"]}  # fmt: skip
    pdf = tmp_path / "lot.pdf"
    pages = save_lot_pdf(lot, pdf, about)
    assert pages >= 4 and pdf.read_bytes().startswith(b"%PDF")

    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=60)  # fmt: skip
    shown = sorted(tmp_path.glob("page-*.png"))
    assert len(shown) == pages
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for k, png in enumerate(shown, 1):
        with Image.open(png) as img:
            assert img.size[0] < img.size[1], "A4, portrait"
            colours = img.convert("RGB").getcolors(maxcolors=1_000_000)
            assert colours is not None and len(colours) > 20, f"page {k} is drawn on"
        shutil.copy(png, ARTIFACTS / f"lot_report_page{k}.png")

    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout  # fmt: skip
    b = lot.burst
    assert b is not None and b.k is not None and b.lower_bound_atm is not None
    assert "Lot L9: balloon catheter test report" in text
    assert "Date (UTC): 2025-12-06 05:46:40" in text and "Operator: ann" in text
    assert f"k {b.k:.3f}" in text and f"{b.lower_bound_atm:.2f} atm" in text
    assert f"burst: {b.verdict}" in text and b.verdict in ("PASS", "FAIL")
    assert "Label: diameter at each whole atm" in text
    assert "1 of 1 survived 3 cycles at 8 atm: 5 % reliability shown at 95 % confidence" in text
    assert text.count("5e" * 32) == len(traces), "each file's SHA-256, in full"
