"""QA manifests: secrets never written; each way a recording can be incomplete or altered caught."""

from __future__ import annotations

import json
from pathlib import Path

from daemon.recordings.manifest import (
    FORMAT,
    REDACTED,
    file_entries,
    manifest_name,
    redact,
    verify,
    write,
)


def test_secrets_are_redacted_wherever_they_sit() -> None:
    config = {
        "influx": {"url": "https://db:8086", "token": "s3cr3t", "org": "lab"},
        "mqtt": {"url": "mqtts://alice:hunter2@broker:8883", "password_file": "/run/pw"},
        "device": [{"name": "d", "api_key": "k"}],
        "unset": {"token": None},
    }
    out = redact(config)
    text = json.dumps(out)
    assert "s3cr3t" not in text and "hunter2" not in text and '"k"' not in text
    assert out["influx"] == {"url": "https://db:8086", "token": REDACTED, "org": "lab"}
    assert out["mqtt"]["url"] == f"mqtts://alice:{REDACTED}@broker:8883"
    assert out["mqtt"]["password_file"] == REDACTED
    assert out["unset"] == {"token": None}  # nothing there to hide; says it was not set


def _session(tmp: Path, *, complete: bool = True) -> tuple[Path, list[Path]]:
    d = tmp / "rec" / "run1"
    d.mkdir(parents=True)
    files = [d / "a_0001.mcap", d / "b_0001.mcap"]
    for i, f in enumerate(files):
        f.write_bytes(bytes(range(256)) * (i + 3))
    doc = {"format": FORMAT, "session": "run1", "complete": complete}
    doc["files"] = file_entries(files, hashed=complete)
    write(d / manifest_name(1_700_000_000_123_456_789, "run1", "bench-pc"), doc)
    return tmp / "rec", files


def test_a_whole_unaltered_session_verifies(tmp_path: Path) -> None:
    root, files = _session(tmp_path)
    (manifest,) = (root / "run1").glob("*.manifest.json")
    assert manifest.name == "20231114T221320.123Z_run1_bench-pc.manifest.json"
    verdict = verify(root)
    assert verdict.ok and verdict.problems == []
    assert (verdict.manifests, verdict.files) == (1, 2)
    assert verdict.bytes == sum(f.stat().st_size for f in files)


def test_missing_truncated_altered_and_unlisted_files_are_each_named(tmp_path: Path) -> None:
    root, (a, b) = _session(tmp_path)
    a.unlink()
    data = bytearray(b.read_bytes())
    data[10] ^= 0xFF
    b.write_bytes(bytes(data))
    (root / "run1" / "stray_0001.mcap").write_bytes(b"x")
    problems = verify(root).problems
    assert len(problems) == 4
    assert any("a_0001.mcap: missing" in p for p in problems)
    assert any("b_0001.mcap: SHA-256 differs" in p for p in problems)
    # An altered file is read through for what it lost: this one is no MCAP file at all.
    assert any("b_0001.mcap: damaged: not an MCAP recording" in p for p in problems)
    assert any(p == "run1/stray_0001.mcap: in no manifest" for p in problems)
    b.write_bytes(bytes(data[:-1]))
    assert any("b_0001.mcap: 1023 bytes, manifest says 1024" in p for p in verify(root).problems)


def test_an_unclosed_session_and_a_broken_manifest_fail(tmp_path: Path) -> None:
    root, _ = _session(tmp_path, complete=False)
    (problem,) = verify(root).problems
    assert "was never closed" in problem and not verify(root).ok
    (manifest,) = (root / "run1").glob("*.manifest.json")
    manifest.write_text("{not json")
    assert any("unreadable" in p for p in verify(root).problems)


def test_a_directory_without_manifests_is_not_ok(tmp_path: Path) -> None:
    (tmp_path / "x.mcap").write_bytes(b"1")
    verdict = verify(tmp_path)
    assert not verdict.ok and verdict.manifests == 0
    assert "x.mcap: in no manifest" in verdict.problems


def test_a_session_whose_name_has_a_colon_is_in_its_own_folder(tmp_path: Path) -> None:
    d = tmp_path / "rec" / "L9:s05"
    d.mkdir(parents=True)
    (d / "a_0001.mcap").write_bytes(b"\0" * 64)
    doc = {"format": FORMAT, "session": "L9:s05", "complete": True,
           "files": file_entries([d / "a_0001.mcap"], hashed=True)}  # fmt: skip
    write(d / manifest_name(1_700_000_000_000_000_000, "L9:s05", "pc"), doc)
    assert verify(tmp_path / "rec").problems == []
    (tmp_path / "rec" / "L9:s05").rename(tmp_path / "rec" / "L9-s06")
    (problem,) = verify(tmp_path / "rec").problems
    assert problem.endswith("is in the folder 'L9-s06': moved or renamed")


def test_a_malformed_list_of_files_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    root, _ = _session(tmp_path)
    (manifest,) = (root / "run1").glob("*.manifest.json")
    doc = json.loads(manifest.read_text())
    for files in ({"a": 1}, None, [1], [{"name": 5, "bytes": 1}], [{"name": "a_0001.mcap"}],
                  [{"name": "../x.mcap", "bytes": 1}]):  # fmt: skip
        manifest.write_text(json.dumps({**doc, "files": files}))
        problems = verify(root).problems
        assert f"run1/{manifest.name}: its list of files is malformed (edited?)" in problems
