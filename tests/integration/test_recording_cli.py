"""The recording verbs as Unix tools: files and directories alike, one line and a non-zero
exit for what is no recording, a file cut short said to be, a closed pipe ended quietly."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from daemon.pipeline import Chunk, Samples, StampedEvent, StampedSample
from daemon.recordings.encoder import RecordEncoder
from daemon.recordings.file import RecordingFile
from tests.support.helpers import REPO, pvlog_cmd, replayed, start_replay

pytestmark = pytest.mark.integration

T0 = 1_764_000_000_000_000_000


def write_recording(
    path: Path,
    *,
    start: int = 0,
    reads: int = 200,
    identity: str = "model=PVS-1 serial=SN42 firmware=1.2",
    values: dict[str, float] | None = None,
    session: str = "s1",
    device: str = "box",
    raw: bytes = b"$PVS...\r\n",
) -> int:
    """A recording of a PVS box: ``reads`` reads of 10 samples each; its sample count."""
    encoder = RecordEncoder(device)
    f = RecordingFile(path, {"device": device, "driver": "pvs", "session": session})
    said = StampedEvent(T0, "identity", identity, None)
    chunks = [Chunk(b"", T0, Samples(), [said], [])]
    values = values or {"pressure_kpa": 101.5, "volume_ml": 0.25}
    for r in range(start, start + reads):
        t = T0 + r * 100_000_000
        rows = [StampedSample(t + k, t + k, r * 10 + k, values, 0) for k in range(10)]
        chunks.append(Chunk(raw.replace(b"...", b"%04d" % r), t, Samples.of(rows), [], []))
        if len(chunks) >= 20:
            f.write(encoder.encode(chunks), encoder.channels)
            chunks = []
    f.write(encoder.encode(chunks), encoder.channels)
    f.close()
    return reads * 10


def pvlog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pvlog_cmd(*args), capture_output=True, text=True, cwd=REPO, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "no such file or directory"),
        (b"", "empty file: not a recording"),
        (bytes(range(100)), "not an MCAP recording"),
        (b"\x89MCAP0\r\n" + bytes(range(7, 256)) * 20, "not an MCAP recording: nothing after"),
    ],
)
@pytest.mark.parametrize(
    "verb", [["recording", "info"], ["recording", "export"], ["report"], ["replay"]]
)
def test_what_is_no_recording_is_one_line_and_a_failure(
    tmp_path: Path, verb: list[str], content: bytes | None, said: str
) -> None:
    bad = tmp_path / "bad.mcap"
    if content is not None:
        bad.write_bytes(content)
    done = pvlog(*verb, str(bad))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and said in done.stderr, done.stderr
    assert str(bad) in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_info_says_truncated_and_how_far_a_file_cut_short_reads(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mcap"
    write_recording(whole)
    cut = tmp_path / "cut.mcap"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    shown = pvlog("recording", "info", str(whole), str(cut))
    assert shown.returncode == 0, shown.stderr
    first, second = shown.stdout.strip().split("\n\n")
    assert "     state: complete" in first
    assert "   samples: 2000" in first
    assert "identity: model=PVS-1 serial=SN42 firmware=1.2" in first
    assert "  channels: pressure_kpa, volume_ml" in first
    assert "{" not in shown.stdout, "no Python reprs"
    assert "     state: truncated: no end written, reads to 2025-" in second
    n = int(next(x for x in second.splitlines() if "samples:" in x).split(":")[1])
    assert 0 < n < 2000


def test_a_directory_is_its_recordings_and_a_session_exports_in_one_go(tmp_path: Path) -> None:
    session = tmp_path / "rec" / "s1"
    session.mkdir(parents=True)
    a = write_recording(session / "box_0001.mcap", reads=50)
    b = write_recording(session / "box_0003.mcap", start=50, reads=70)
    shown = pvlog("recording", "info", "--json", str(tmp_path / "rec"))
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 2
    out = tmp_path / "all.csv"
    done = pvlog("recording", "export", str(session), "-o", str(out))
    assert done.returncode == 0, done.stderr
    data = list(csv.DictReader(out.open()))
    assert len(data) == a + b
    assert [int(r["seq"]) for r in data] == list(range(a + b)), "both files, in order, once"
    assert f"{a + b} samples exported" in done.stderr


def test_a_session_name_picks_its_files_from_a_directory_of_many(tmp_path: Path) -> None:
    """``--session`` across files and devices: what QA asks for by name, not by file."""
    rec = tmp_path / "rec"
    rec.mkdir()
    a = write_recording(rec / "1_lot7_box_0001.mcap", reads=5, session="lot7")
    b = write_recording(rec / "2_other_box_0001.mcap", reads=7, session="other")
    c = write_recording(rec / "3_lot7_box_0002.mcap", start=5, reads=6, session="lot7")
    d = write_recording(rec / "4_lot7_arm_0001.mcap", reads=4, session="lot7", device="arm")
    out = tmp_path / "lot7.csv"
    done = pvlog("recording", "export", str(rec), "--session", "lot7", "-o", str(out))
    assert done.returncode == 0, done.stderr
    data = list(csv.DictReader(out.open()))
    assert len(data) == a + c + d and {r["session"] for r in data} == {"lot7"}
    assert [int(r["seq"]) for r in data if r["device"] == "box"] == list(range(a + c))
    one = pvlog("recording", "export", str(rec), "--session", "lot7", "--device", "arm")
    assert one.returncode == 0 and len(one.stdout.splitlines()) == 1 + d
    none = pvlog("recording", "export", str(rec), "--session", "lot8")
    assert none.returncode == 1 and none.stdout == ""
    assert none.stderr.strip() == f"pvlog recording export: no recording of session 'lot8' in {rec}"
    report = pvlog("report", str(rec), "--session", "other", "--json")
    assert report.returncode == 0, report.stderr
    (summary,) = json.loads(report.stdout)["results"]  # one document, json.load reads it
    assert summary["device"] == "box" and summary["session"] == "other"
    assert summary["samples"] == b


def test_export_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    write_recording(path)
    proc = subprocess.Popen(
        pvlog_cmd("recording", "export", str(path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"time_ns,")
    proc.stdout.close()  # what `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141, err  # as a Unix tool killed by SIGPIPE
    assert "Traceback" not in err and "Error" not in err


def test_progress_off_a_terminal_is_one_line_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    n = write_recording(path)
    done = pvlog("recording", "export", str(path), "-o", str(tmp_path / "o.csv"), "--progress")
    assert done.returncode == 0
    assert "\r" not in done.stderr
    assert done.stderr.splitlines()[-2:] == [f"samples: {n}", f"{n} samples exported"]


def test_csv_tables_read_as_numbers_in_the_unit_asked(tmp_path: Path) -> None:
    """What a spreadsheet or pandas gets: units in the column names, numbers that parse,
    the session and the device's serial on every row; events and inflations as tables."""
    path = tmp_path / "r.mcap"
    write_recording(path, reads=30)
    out = tmp_path / "atm.csv"
    assert pvlog("recording", "export", str(path), "--units", "atm", "-o", str(out)).returncode == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 300
    first = rows[0]
    assert (first["session"], first["device"], first["serial"]) == ("s1", "box", "SN42")
    assert float(first["pressure_atm"]) == pytest.approx(101.5 / 101.325)
    assert len(first["pressure_atm"]) <= 11, "nine significant digits, no float noise"
    assert float(first["volume_ml"]) == 0.25 and float(rows[-1]["elapsed_s"]) == 2.9
    events = tmp_path / "events.csv"
    done = pvlog("recording", "export", str(path), "--table", "events", "-o", str(events))
    assert done.returncode == 0, done.stderr
    (identity,) = list(csv.DictReader(events.open()))
    assert (identity["code"], identity["serial"]) == ("identity", "SN42")
    inflations = tmp_path / "inflations.csv"
    done = pvlog("recording", "export", str(path), "--table", "inflations", "-o", str(inflations))
    assert done.returncode == 0, done.stderr
    (cut,) = list(csv.DictReader(inflations.open()))  # 101.5 kPa from the first sample on
    assert (cut["cut_start"], cut["cut_end"], cut["time_to_peak_s"]) == ("true", "true", "")
    assert float(cut["peak_pressure_kpa"]) == 101.5


def test_readings_are_rounded_to_the_devices_resolution_in_the_unit_shown(
    tmp_path: Path,
) -> None:
    """An LBX channel scaled 0.01 kPa: five decimals of atm, two of kPa, its own 0.001 mL."""
    path = tmp_path / "r.mcap"
    said = "model=CLX-4 serial=L1 firmware=1 resolution=pressure_kpa:0.01,volume_ml:0.001"
    write_recording(path, reads=3, identity=said,
                    values={"pressure_kpa": 1216.03 + 1e-10, "volume_ml": 1.2345678})  # fmt: skip
    found = {}
    for units in ("atm", "kPa", "psi"):
        out = tmp_path / f"{units}.csv"
        done = pvlog("recording", "export", str(path), "--units", units, "-o", str(out))
        assert done.returncode == 0, done.stderr
        found[units] = next(csv.DictReader(out.open()))
    assert found["atm"]["pressure_atm"] == "12.00128"  # 1216.03 / 101.325 = 12.001283...
    assert found["kPa"]["pressure_kpa"] == "1216.03"
    assert found["psi"]["pressure_psi"] == "176.37"  # a 0.00145 psi step: 176.370, three
    assert found["kPa"]["volume_ml"] == "1.235"
    for head, cells in (("pressure_atm", found["atm"]), ("pressure_kpa", found["kPa"])):
        assert float(cells[head]) > 0, "numbers a reader parses"


def test_a_stepped_inflation_exports_its_steps_and_marks(tmp_path: Path) -> None:
    """The compliance result as CSV: a row per step and per MARK, numbers that parse."""
    path = tmp_path / "c.mcap"
    encoder = RecordEncoder("box")
    f = RecordingFile(path, {"device": "box", "driver": "pvs", "session": "c1"})
    rows, k = [], 0
    for atm, seconds in [(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (0.0, 1.0)]:
        for _ in range(int(seconds * 100)):  # 100 Hz, flat steps (a ramp is one sample)
            t = T0 + k * 10_000_000
            rows.append(StampedSample(t, t, k, {"pressure_kpa": atm * 101.325,
                                                "volume_ml": atm * 0.5}, 0))  # fmt: skip
            k += 1
    mark = StampedEvent(T0 + 250 * 10_000_000, "mark", "step 2", None)
    f.write(encoder.encode([Chunk(b"", T0, Samples.of(rows), [mark], [])]), encoder.channels)
    f.close()
    out = tmp_path / "steps.csv"
    done = pvlog("recording", "export", str(path), "--table", "steps", "--units", "atm",
                 "-o", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = list(csv.DictReader(out.open()))
    assert [float(r["nominal_atm"]) for r in found] == [1.0, 2.0, 3.0]
    assert [float(r["pressure_atm"]) for r in found] == [1.0, 2.0, 3.0]
    assert [float(r["volume_ml"]) for r in found] == [0.5, 1.0, 1.5]
    assert all(float(r["held_s"]) == 0.99 for r in found)
    out = tmp_path / "marks.csv"
    done = pvlog("recording", "export", str(path), "--table", "marks", "-o", str(out))
    (m,) = list(csv.DictReader(out.open()))
    assert (m["detail"], float(m["pressure_kpa"]), float(m["volume_ml"])) == (
        "step 2",
        2 * 101.325,
        1.0,
    )


def test_a_directory_replays_as_one_stream(tmp_path: Path) -> None:
    """A session split over two files plays as one: every raw byte, in order, once."""
    session = tmp_path / "s1"
    session.mkdir()
    write_recording(session / "box_0001.mcap", reads=20)
    write_recording(session / "box_0002.mcap", start=20, reads=30)
    got = replayed(start_replay(session, "--rate", "max"), idle_s=5.0)
    assert got == b"".join(b"$PVS%04d\r\n" % r for r in range(50))


def test_any_other_suffix_is_refused_in_one_line_before_anything_is_read(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-such.mcap"
    done = subprocess.run(
        pvlog_cmd("report", str(missing), "--plot", str(tmp_path / "report.jpg")),
        capture_output=True, text=True, cwd=REPO, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"pvlog report: --plot {tmp_path / 'report.jpg'}: name a .png, .svg or .pdf file"
    ]
    assert not (tmp_path / "report.jpg").exists()
