"""What the manifests say the recordings hold, held against what is there: a file
deleted, swapped with its manifest's hash rewritten, or its signed manifest edited."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemon.audit import keys
from daemon.recordings.holdings import held_to, listings, manifests_under, unread
from daemon.recordings.manifest import sha256_file


def session_dir(root: Path, session: str, lot: str = "L7", *, sign: bool = False,
                hashed: bool = True) -> tuple[Path, Path]:  # fmt: skip
    """A session's directory: one recording and its manifest."""
    where = root / session
    where.mkdir(parents=True)
    rec = where / f"20261207T100000Z_{session}_bench.mcap"
    rec.write_bytes(f"the samples of {session}".encode())
    entry: dict[str, Any] = {"name": rec.name, "bytes": rec.stat().st_size}
    if hashed:
        entry["sha256"] = sha256_file(rec)
    doc: dict[str, Any] = {"format": "pvlog-manifest/1", "session": session,
                           "session_tags": {"lot": lot}, "files": [entry]}  # fmt: skip
    if sign:
        doc["signature"] = keys.sign(Ed25519PrivateKey.generate(), doc)
    manifest = where / f"20261207T100000.000Z_{session}_bench.manifest.json"
    manifest.write_text(json.dumps(doc))
    return rec, manifest


def check(rec: Path, session: str, root: Path) -> str | None:
    listed, problems = listings(manifests_under([root]))
    assert problems == []
    return held_to(rec, sha256_file(rec), session, listed.get(rec.resolve()))


def test_a_file_as_its_manifest_lists_it(tmp_path: Path) -> None:
    rec, _ = session_dir(tmp_path, "L7-b01", sign=True)
    assert check(rec, "L7-b01", tmp_path) is None


def test_a_file_altered_or_in_no_manifest(tmp_path: Path) -> None:
    rec, _ = session_dir(tmp_path, "L7-b01")
    rec.write_bytes(b"something else")
    assert f"{rec}: differs from " in (check(rec, "L7-b01", tmp_path) or "")
    stray = tmp_path / "L7-b01" / "stray.mcap"
    stray.write_bytes(b"x")
    assert check(stray, "L7-b01", tmp_path) == f"{stray}: in no manifest"


def test_a_file_swapped_with_its_manifests_hash_rewritten(tmp_path: Path) -> None:
    """b03's file replaced by b04's bytes, and b03's manifest told the new hash."""
    mine, manifest = session_dir(tmp_path, "L7-b03")
    theirs, _ = session_dir(tmp_path, "L7-b04")
    mine.write_bytes(theirs.read_bytes())
    doc = json.loads(manifest.read_text())
    doc["files"][0]["sha256"] = sha256_file(mine)
    manifest.write_text(json.dumps(doc))
    said = check(mine, "L7-b04", tmp_path)  # the file's own content says b04
    assert said is not None and "is session L7-b03's, the file says session L7-b04" in said


def test_a_signed_manifest_edited_after_signing(tmp_path: Path) -> None:
    rec, manifest = session_dir(tmp_path, "L7-b01", sign=True)
    rec.write_bytes(b"swapped")
    doc = json.loads(manifest.read_text())
    doc["files"][0]["sha256"] = sha256_file(rec)
    manifest.write_text(json.dumps(doc))
    said = check(rec, "L7-b01", tmp_path)
    assert said is not None and "edited after signing" in said


def test_a_crashed_runs_unhashed_listing_is_not_verified(tmp_path: Path) -> None:
    rec, _ = session_dir(tmp_path, "L7-b01", hashed=False)
    said = check(rec, "L7-b01", tmp_path)
    assert said is not None and "listed unhashed" in said


def test_the_lots_files_that_were_not_read_are_said(tmp_path: Path) -> None:
    gone, _ = session_dir(tmp_path, "L7-w1")
    replaced, _ = session_dir(tmp_path, "L7-w2")
    kept, _ = session_dir(tmp_path, "L7-b1")
    _, _ = session_dir(tmp_path, "L8-x1", lot="L8")
    gone.unlink()
    replaced.write_bytes(b"another lot's recording")
    listed, _ = listings(manifests_under([tmp_path]))
    assert unread(listed, {kept.resolve(), replaced.resolve()}, "L7") == [
        f"{gone.resolve()}: listed in 20261207T100000.000Z_L7-w1_bench.manifest.json "
        "(session L7-w1), not there"
    ]
    said = unread(listed, {kept.resolve()}, "L7")  # the replaced file read as another's
    assert len(said) == 2 and said[1].startswith(f"{replaced.resolve()}: differs from ")
    assert said[1].endswith("(session L7-w2): not that session's file")
    assert unread(listed, set(), "L8") == [], "another lot's files, as listed, are not this one's"


def test_with_the_labs_keys_a_manifest_re_signed_or_stripped_is_caught(tmp_path: Path) -> None:
    lab = Ed25519PrivateKey.generate()
    trusted = frozenset({keys.fingerprint(lab.public_key())})
    rec, manifest = session_dir(tmp_path, "L7-w2")
    doc = json.loads(manifest.read_text())
    for signer, said in ((lab, None), (Ed25519PrivateKey.generate(), "not a trusted key"),
                         (None, "not signed")):  # fmt: skip
        doc.pop("signature", None)
        if signer is not None:
            doc["signature"] = keys.sign(signer, doc)
        manifest.write_text(json.dumps(doc))
        listed, _ = listings(manifests_under([tmp_path]), trusted)
        got = held_to(rec, sha256_file(rec), "L7-w2", listed[rec.resolve()])
        assert got is None if said is None else (got is not None and said in got)
