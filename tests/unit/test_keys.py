"""Ed25519 keys and signed documents: a key others may read is refused, a person's key
needs its passphrase, and a signature catches an edit, a key swapped in, or none."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.audit import keys


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    fingerprint = keys.keygen(tmp_path / "k", None)
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    assert keys.fingerprint(keys.load_public(tmp_path / "k.pub")) == fingerprint
    with pytest.raises(keys.KeyProblem, match="exists; a key is never overwritten"):
        keys.keygen(tmp_path / "k", None)
    (tmp_path / "k").chmod(0o644)
    with pytest.raises(keys.KeyProblem, match=r"readable by others \(mode 0644\); chmod 600"):
        keys.load_private(tmp_path / "k", None)


def test_a_persons_key_needs_its_passphrase(tmp_path: Path) -> None:
    keys.keygen(tmp_path / "plain", None)
    with pytest.raises(keys.KeyProblem, match="must be protected by a passphrase"):
        keys.load_private(tmp_path / "plain", None, protected=True)
    keys.keygen(tmp_path / "mine", "correct horse")
    with pytest.raises(keys.KeyProblem, match="none was given"):
        keys.load_private(tmp_path / "mine", None, protected=True)
    with pytest.raises(keys.KeyProblem, match="a wrong passphrase"):
        keys.load_private(tmp_path / "mine", "wrong horse", protected=True)
    key = keys.load_private(tmp_path / "mine", "correct horse", protected=True)
    assert keys.fingerprint(key.public_key()) == keys.fingerprint(
        keys.load_public(tmp_path / "mine.pub")
    )


def test_a_signature_catches_an_edit_another_key_and_its_absence(tmp_path: Path) -> None:
    keys.keygen(tmp_path / "lab", None)
    keys.keygen(tmp_path / "other", None)
    lab = keys.load_private(tmp_path / "lab", None)
    trusted = frozenset({keys.fingerprint(lab.public_key())})
    doc = {"session": "L7-s01", "files": [{"name": "a.mcap", "sha256": "ab" * 32}]}
    signed = doc | {"signature": keys.sign(lab, doc)}
    assert keys.check(signed) is None and keys.check(signed, trusted) is None
    edited = signed | {"session": "L7-s02"}
    assert "edited after signing" in str(keys.check(edited))
    other = doc | {"signature": keys.sign(keys.load_private(tmp_path / "other", None), doc)}
    assert keys.check(other) is None, "valid in itself..."
    assert "not a trusted key" in str(keys.check(other, trusted)), "...but not the lab's"
    assert keys.check(doc) is None and keys.check(doc, trusted) == "not signed"
    swapped = other | {"signature": other["signature"] | {"key": signed["signature"]["key"]}}
    assert "names another key" in str(keys.check(swapped))


def test_a_signing_key_others_may_read_is_a_config_error(tmp_path: Path) -> None:
    from daemon.config import ConfigError, load_config

    keys.keygen(tmp_path / "daemon.key", None)
    (tmp_path / "daemon.key").chmod(0o640)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[audit]\nsigning_key = "{tmp_path / "daemon.key"}"\n')
    with pytest.raises(ConfigError, match=r"^audit\.signing_key: .*readable by others"):
        load_config(cfg, devices=False).audit.key()
