"""A lot's verdict through ``pvlog run``, attacked as an adversary would: a leaker under
the RBP, a specimen recorded twice, a run stopped and restarted, a file swapped, a lot
that is not normal, fatigue short of its target. Each bench is a simulator and its own
daemon recording into one directory; the verdicts are read as a reviewer reads them."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from daemon.cli import build_parser
from daemon.influx.v1 import InfluxV1
from tests.e2e.test_specimen_results import SPECIMEN, pvlog, truth_inflations
from tests.support.helpers import REPO, DaemonProcess, SimProcess, finish, pvlog_cmd, wait_for

pytestmark = pytest.mark.e2e

SCHEMA = json.loads((REPO / "docs" / "pvlog-lot-2.schema.json").read_text())

BENCHES: dict[str, tuple[str, ...]] = {
    # name: its tags, then the simulator's profile and options
    "b1": ("burst", "--rbp", "14", "--ramp", "8", "--seed", "1"),
    "b2": ("burst", "--rbp", "14", "--ramp", "8", "--seed", "2"),
    "b3": ("burst", "--rbp", "14", "--ramp", "8", "--seed", "3"),
    "b4": ("burst", "--rbp", "14", "--ramp", "8", "--seed", "4"),
    "b5": ("burst", "--rbp", "14", "--ramp", "8", "--seed", "5"),
    "w1": ("burst", "--rbp", "2", "--ramp", "8", "--seed", "6"),  # a weak one: 4-8 atm
    "k1": ("leak", "--rbp", "8", "--ramp", "4", "--seed", "7"),  # leaks at 3.2-4.8 atm
    "f1": ("fatigue", "--rbp", "5", "--ramp", "8", "--cycles", "2", "--hold", "0.3"),
}


def in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """``pvlog ARGS`` run by this process, as the CLI runs it (its parser, its handler):
    a reader of recordings has no process-wide state, and a Python start with scipy
    costs two seconds a call. The CLI's own process is tested by ``pvlog`` above."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parsed = build_parser().parse_args(args)
            code = parsed.handler(parsed)
        except SystemExit as exc:
            code = exc.code
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def lot(*args: str, ok: bool = True) -> dict[str, Any]:
    done = in_process("report", "--lot", "L5", "--json", *args)
    assert (done.returncode == 0) == ok, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    jsonschema.validate(doc, SCHEMA)
    return doc


def config(tmp: Path, influx: InfluxV1, session: str, specimen: str, port: Path, *,
           test: str, more: str = "") -> Path:  # fmt: skip
    cfg = tmp / f"{session}.toml"
    text = SPECIMEN.format(url=influx.url, database=influx.database, tmp=tmp, bench=session,
                           name=session, specimen=specimen, port=port)  # fmt: skip
    cfg.write_text(text.replace('lot = "L1"', 'lot = "L5"')
                   .replace('test = "burst"', f'test = "{test}"{more}'))  # fmt: skip
    return cfg


def bench(tmp: Path, influx: InfluxV1, session: str, specimen: str, profile: str,
          *options: str, more: str = "") -> tuple[SimProcess, DaemonProcess]:  # fmt: skip
    sim = SimProcess(tmp, session, "--rate", "50", "--profile", profile, *options)
    test = "burst" if profile == "leak" else profile
    return sim, DaemonProcess(
        config(tmp, influx, session, specimen, sim.link, test=test, more=more)
    )


def run_benches(benches: list[tuple[SimProcess, DaemonProcess]], done: Any) -> None:
    try:
        for sim, _ in benches:
            sim.wait_listening()
            wait_for(lambda s=sim: done(s), 90, f"{sim.link.name}'s test")  # type: ignore[misc]
        time.sleep(0.5)
        for sim, daemon in benches:
            finish(sim, daemon)
    finally:
        for sim, daemon in benches:
            sim.kill()
            daemon.kill()


def record(tmp: Path, influx: InfluxV1) -> Path:
    """Every bench's recordings, in ``tmp/rec``: eleven benches in two rounds."""
    first = [bench(tmp, influx, f"L5-{name}", name, *options)
             for name, options in BENCHES.items()]  # fmt: skip
    run_benches(first, lambda s: len(truth_inflations(s)) >= (2 if "f1" in s.link.name else 1))
    # Then b1 again under another session, b2 again declared a retest, and a specimen
    # stopped mid-ramp and started again under its fixed session name.
    later = [
        bench(tmp, influx, "L5-b1-again", "b1", "burst", "--rbp", "14", "--ramp", "8"),
        bench(tmp, influx, "L5-b2-retest", "b2", "burst", "--rbp", "14", "--ramp", "8",
              more=', retest = "balloon seated off the mark"'),
    ]  # fmt: skip
    sim, daemon = bench(tmp, influx, "L5-s1", "s1", "burst", "--rbp", "6", "--ramp", "1")
    try:
        sim.wait_listening()
        wait_for(lambda: any(t["kind"] == "sample" and t["pressure_kpa"] > 200
                             for t in sim.truth()), 60, "the ramp under way")  # fmt: skip
        assert daemon.stop() == 0, daemon.log()
        restarted = DaemonProcess(tmp / "L5-s1.toml")
    finally:
        daemon.kill()
    run_benches([*later, (sim, restarted)], truth_inflations)
    return tmp / "rec"


def dirs(rec: Path, *names: str) -> list[str]:
    return [str(rec / f"L5-{n}") for n in names]


def a_leaker_under_the_rbp_fails_the_lot(recorded: Path) -> None:
    doc = lot(*dirs(recorded, "b1", "b2", "b3", "b4", "b5", "k1"), "--rated-burst-atm", "5")
    b = doc["burst"]
    (leak,) = [r for r in b["rows"] if r["specimen"] == "k1"]
    assert leak["outcome"] == "leak" and 3.0 < leak["failure_atm"] < 5.0
    assert (b["tested"], b["n"], b["verdict"], b["pass"]) == (6, 5, "FAIL", False)
    assert any(r.startswith("k1 leaked at") for r in b["reasons"])
    text = pvlog("report", "--lot", "L5", *dirs(recorded, "b1", "k1"), "--units", "psi",
                 "--rated-burst-atm", "5").stdout  # fmt: skip
    assert "burst: FAIL" in text and " psi" in text
    assert any(line.split()[:3] == ["k1", "leak", "at"] for line in text.splitlines())
    # A reader gone before a word was printed (`| head -0`): the trail has the verdict.
    trail = recorded / "audit.jsonl"
    before = trail.read_text().count('"report_made"')
    gone = subprocess.Popen(
        pvlog_cmd("report", "--lot", "L5", *dirs(recorded, "b1", "k1"), "--rated-burst-atm", "5"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO,
    )  # fmt: skip
    assert gone.stdout is not None
    gone.stdout.close()
    assert gone.wait(120) == 141, "ended as SIGPIPE ends a Unix tool"
    assert trail.read_text().count('"report_made"') == before + 1
    made = json.loads(trail.read_text().splitlines()[-1])
    assert made["kind"] == "report_made" and made["what"]["lot"] == "L5"
    assert made["what"]["verdicts"]["burst"] == "FAIL"
    assert (made["what"]["rated_burst_atm"], made["what"]["rbp_from"]) == (5, "--rated-burst-atm")


def a_lot_that_is_not_normal_is_not_pass(recorded: Path) -> None:
    doc = lot(*dirs(recorded, "b1", "b2", "b3", "b4", "b5", "w1"), "--rated-burst-atm", "3")
    b = doc["burst"]
    assert b["n"] == 6 and b["normal"] is False and b["normality_p"] < 0.05
    assert b["verdict"] == "NOT SHOWN" and b["pass"] is False
    assert b["distribution_free"]["lowest_atm"] == b["min_atm"]
    # An inflation threshold above the weak balloon's burst hides no specimen.
    doc = lot(*dirs(recorded, "b1", "b2", "b3", "b4", "b5", "w1"), "--rated-burst-atm", "3",
              "--threshold-atm", "9")  # fmt: skip
    (w1,) = [r for r in doc["burst"]["rows"] if r["specimen"] == "w1"]
    assert (w1["outcome"], w1["reason"]) == ("incomplete", "no inflation")
    assert w1["highest_atm"] < 9 and doc["burst"]["verdict"] == "NOT SHOWN"
    assert doc["plan"]["threshold_atm"] == {"value": 9.0, "from": "--threshold-atm"}


def a_specimen_recorded_twice_is_refused_a_retest_counted_once(recorded: Path) -> None:
    done = pvlog("report", "--lot", "L5", *dirs(recorded, "b1", "b2", "b1-again"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "pvlog report: lot L5: specimen b1 tested again: session L5-b1-again after its "
        "test in session L5-b1 ended; tag the later session retest=<reason> if it is a retest"
    ]
    doc = lot(*dirs(recorded, "b1", "b2", "b2-retest", "b3"), "--rated-burst-atm", "5")
    assert doc["tested"] == 3 and doc["burst"]["n"] == 3
    (retest,) = doc["retests"]
    assert retest == {"session": "L5-b2-retest", "reason": "balloon seated off the mark",
                      "supersedes": ["L5-b2"], "replaced": retest["replaced"],
                      "replaced_failure_atm": retest["replaced_failure_atm"]}  # fmt: skip
    assert retest["replaced"].startswith("burst at "), "what the first test showed"
    (b2,) = [s for s in doc["specimens"] if s["specimen"] == "b2"]
    assert [p["session"] for p in b2["parts"]] == ["L5-b2-retest"]
    pdf = recorded.parent / "L5.pdf"
    made = in_process("report", "--lot", "L5", *dirs(recorded, "b1", "b2", "b2-retest", "b3"),
                      "--rated-burst-atm", "5", "--pdf", str(pdf))  # fmt: skip
    assert made.returncode == 0, made.stderr
    shown = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                           text=True, check=True, timeout=60).stdout  # fmt: skip
    assert "Retest: session L5-b2-retest (balloon seated off the mark) supersedes L5-b2" in shown
    # A lot is every session tagged with it: one session of it is not asked for.
    picked = in_process("report", "--lot", "L5", "--session", "L5-b1", str(recorded))
    assert picked.returncode == 2 and "no --session" in picked.stderr


def a_specimen_stopped_and_restarted_is_one(recorded: Path) -> None:
    doc = lot(*dirs(recorded, "s1", "b1", "b2"), "--rated-burst-atm", "5")
    (s1,) = [s for s in doc["specimens"] if s["specimen"] == "s1"]
    assert len(s1["parts"]) == 2 and {p["session"] for p in s1["parts"]} == {"L5-s1"}
    assert len({p["run"] for p in s1["parts"]}) == 2
    assert doc["tested"] == 3 and doc["burst"]["n"] == 3
    (row,) = [r for r in doc["burst"]["rows"] if r["specimen"] == "s1"]
    assert row["outcome"] == "burst" and row["failure_atm"] > 7.5  # 6 + 2..6 atm


def a_swapped_file_is_refused(recorded: Path, tmp_path: Path) -> None:
    copy = tmp_path / "rec"
    shutil.copytree(recorded, copy)
    (mine,) = (copy / "L5-b1").glob("*.mcap")
    (theirs,) = (copy / "L5-b2").glob("*.mcap")
    mine.write_bytes(theirs.read_bytes())
    done = in_process("report", "--lot", "L5", *dirs(copy, "b1", "b3"))
    assert done.returncode == 1 and done.stdout == ""
    # b2's data now, under b1's file name: its manifest says so, and the audit trail.
    by_trail, said = done.stderr.strip().splitlines()
    assert said.startswith("pvlog report: lot L5: specimen b2 (session L5-b2): ")
    assert f"{mine}: differs from " in said and said.endswith("said on the document)")
    assert by_trail.startswith(f"pvlog report: lot L5: L5-b1/{mine.name}: its SHA-256 is not")
    assert "altered or swapped (audit trail " in by_trail
    allowed = lot(*dirs(copy, "b1", "b3"), "--allow-unverified")
    assert len(allowed["unverified"]) == 2 and str(mine) in allowed["unverified"][1]
    (b3,) = [s for s in allowed["specimens"] if s["specimen"] == "b3"]
    (f,) = b3["parts"][0]["files"]
    assert f["sha256"] == f["manifest_sha256"] and len(f["sha256"]) == 64
    # A specimen's file deleted, its manifest left: the lot knows it is missing.
    some = tmp_path / "some"
    for name in ("L5-b3", "L5-w1"):
        shutil.copytree(copy / name, some / name)
    (weak,) = (some / "L5-w1").glob("*.mcap")
    weak.unlink()
    done = in_process("report", "--lot", "L5", str(some))
    assert done.returncode == 1 and done.stdout == ""
    assert f"{weak.resolve()}: listed in " in done.stderr
    assert "(session L5-w1), not there: refused" in done.stderr


def fatigue_short_of_its_target_is_incomplete(recorded: Path) -> None:
    doc = lot(*dirs(recorded, "f1"), "--fatigue-atm", "5", "--cycles-target", "5")
    (row,) = doc["fatigue"]["rows"]
    assert (row["status"], row["cycles"], row["failed_at_cycle"]) == ("incomplete", 2, None)
    assert doc["fatigue"]["verdict"] == "NOT SHOWN"
    refused = in_process("report", "--lot", "L5", *dirs(recorded, "f1"))
    assert refused.returncode == 2 and "no fatigue pressure" in refused.stderr


def test_a_lot_holds_its_verdict_under_attack(short_tmp: Path, influx: InfluxV1) -> None:
    """Recorded once (ten benches take a while), then each attack on the verdict."""
    recorded = record(short_tmp, influx)
    a_leaker_under_the_rbp_fails_the_lot(recorded)
    a_lot_that_is_not_normal_is_not_pass(recorded)
    a_specimen_recorded_twice_is_refused_a_retest_counted_once(recorded)
    a_specimen_stopped_and_restarted_is_one(recorded)
    a_swapped_file_is_refused(recorded, short_tmp / "swapped")
    fatigue_short_of_its_target_is_incomplete(recorded)
