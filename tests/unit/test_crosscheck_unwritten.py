"""A manifest is named in the trail before it is written: a refusal that says the hash
undoes that entry (the one before names the file again); one that names another hash,
or none, undoes nothing."""

from __future__ import annotations

from typing import Any

from daemon.audit.crosscheck import named


def entry(seq: int, kind: str, digest: str | None) -> dict[str, Any]:
    what: dict[str, Any] = {"session": "S1", "file": "m.manifest.json"}
    if digest is not None:
        what["sha256"] = digest
    return {"seq": seq, "kind": kind, "what": what}


def test_a_refused_write_undoes_the_entry_that_announced_it() -> None:
    trail = [entry(1, "manifest_written", "a" * 64), entry(2, "manifest_written", "b" * 64),
             entry(3, "manifest_unwritten", "b" * 64)]  # fmt: skip
    (n,) = named(trail).values()
    assert (n.seq, n.sha256) == (1, "a" * 64)


def test_a_refusal_of_another_write_undoes_nothing() -> None:
    for refusal in (entry(3, "manifest_unwritten", "c" * 64), entry(3, "manifest_unwritten", None)):
        trail = [entry(1, "manifest_written", "a" * 64), entry(2, "manifest_written", "b" * 64),
                 refusal]  # fmt: skip
        (n,) = named(trail).values()
        assert (n.seq, n.sha256) == (2, "b" * 64)


def test_a_first_write_refused_leaves_nothing_named() -> None:
    trail = [entry(1, "manifest_written", "a" * 64), entry(2, "manifest_unwritten", "a" * 64)]
    assert named(trail) == {}
