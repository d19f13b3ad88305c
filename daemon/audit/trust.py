"""Which keys a check trusts, and what it says of a signature by any other.

A signature proves only that the holder of *some* key signed; anyone can make a key.
So trust is named, never assumed: the lab's public keys come from ``--key`` (repeatable)
or the configuration's ``audit.trusted_keys`` (``-c``). A check given none still checks
every signature against the key it carries, and prints each fingerprint as UNTRUSTED
with its own exit code, so a script never reads "signed" as "signed by us".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.audit import keys
from daemon.config import load_config

UNTRUSTED = 3
"""The exit code of a check whose records hold, but whose signatures (or lack of
them) no trusted key vouches for. A problem found (exit 1) outranks it."""

_FINGERPRINT = re.compile(r"^ed25519:[0-9a-f]{64}$")


def fingerprints(named: Iterable[str | Path], where: str = "--key") -> frozenset[str]:
    """Each public key file or ``ed25519:...`` fingerprint as a fingerprint; a file
    that is not a key raises ``KeyProblem`` naming ``where``."""
    out = set()
    for item in named:
        text = str(item)
        if _FINGERPRINT.match(text):
            out.add(text)
            continue
        try:
            out.add(keys.fingerprint(keys.load_public(Path(text))))
        except keys.KeyProblem as exc:
            raise keys.KeyProblem(f"{where}: {exc}") from None
    return frozenset(out)


def trusted(given: Iterable[Path], config_path: str | None) -> frozenset[str]:
    """The keys ``--key`` names and those of ``audit.trusted_keys`` in ``config_path``.
    Raises ``KeyProblem`` or ``ConfigError`` (exit 2)."""
    keys_given = fingerprints(given)
    if config_path is None:
        return keys_given
    config = load_config(config_path, devices=False)
    return keys_given | fingerprints(config.audit.trusted_keys, "audit.trusted_keys")


def untrusted_line(fingerprint: str, what: str) -> str:
    """One signature no trusted key vouches for, as every check prints it."""
    return f"UNTRUSTED {what}: signed by {fingerprint}, a key you did not name as trusted " \
        "(--key, or audit.trusted_keys with -c)"  # fmt: skip


@dataclass
class Tally:
    """What a check found of signatures and problems, and the exit code it makes."""

    trusted: frozenset[str]
    problems: list[str] = field(default_factory=list)
    untrusted: dict[str, list[str]] = field(default_factory=dict)
    """Fingerprint -> what it signed, each verified against its own key only."""
    unsigned: list[str] = field(default_factory=list)
    trusted_seen: set[str] = field(default_factory=set)

    def signature(self, doc: Mapping[str, Any], where: str) -> bool:
        """Check ``doc``'s signature; True when it holds (by a trusted key or, with none
        named, by the key it carries: then tallied as untrusted)."""
        bad = keys.check(doc, self.trusted)
        if bad is not None:
            self.problems.append(f"{where}: {bad}")
            return False
        signer = keys.signer(doc)
        if signer is None:
            self.unsigned.append(where)
        elif self.trusted:
            self.trusted_seen.add(signer)
        else:
            self.untrusted.setdefault(signer, []).append(where)
        return True

    def lines(self) -> list[str]:
        """The problems (FAIL), then each untrusted key once, then what is unsigned."""
        out = [f"FAIL {p}" for p in self.problems]
        for fingerprint, what in sorted(self.untrusted.items()):
            first = what[0] if len(what) == 1 else f"{what[0]} and {len(what) - 1} more"
            out.append(untrusted_line(fingerprint, first))
        if self.unsigned and not self.trusted:
            first = self.unsigned[0]
            more = f" and {len(self.unsigned) - 1} more" if len(self.unsigned) > 1 else ""
            out.append(f"UNSIGNED {first}{more}: no signature; anyone who can write the files "
                       "could have made it")  # fmt: skip
        elif self.nothing_signed and not self.problems:
            out.append(
                "UNSIGNED: nothing checked here is signed, by the daemon's key or "
                "any other: anyone who can write the files could have made it"
            )
        return out

    @property
    def nothing_signed(self) -> bool:
        return not (self.trusted_seen or self.untrusted)

    @property
    def code(self) -> int:
        if self.problems:
            return 1
        return UNTRUSTED if self.untrusted or self.nothing_signed else 0

    @property
    def state(self) -> str:
        """The summary's first word: FAILED, UNTRUSTED (signed by keys not named),
        UNSIGNED (nothing signed, no key named) or OK."""
        if self.code != UNTRUSTED:
            return "OK" if self.code == 0 else "FAILED"
        return "UNTRUSTED" if self.untrusted else "UNSIGNED"

    def keys_said(self) -> str:
        """Which keys signed, as the summary line says them."""
        said = [f"signed by {k} (trusted)" for k in sorted(self.trusted_seen)]
        said += [f"signed by {k} (UNTRUSTED)" for k in sorted(self.untrusted)]
        if self.unsigned:
            said.append(f"{len(self.unsigned)} not signed")
        return ", ".join(said) or "nothing signed"
