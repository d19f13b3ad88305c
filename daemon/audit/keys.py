"""Ed25519 keys and signatures over JSON documents: the daemon's (manifests, the audit
trail's head) and a person's (a report).

A document is signed in its canonical form (keys sorted, no spaces, UTF-8) without its
``signature`` member, so the manifest can stay indented for people to read. The
signature block names the key by its fingerprint and carries the public key itself: a
check needs nothing but the document, and a check against the lab's keys (``trusted``)
also catches a document re-signed with some other key. What a signature cannot prove
(a stolen key, the clock) is in docs/records.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from collections.abc import Callable, Mapping, Set
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drivers.errors import PvlogError

ALGORITHM = "ed25519"


class KeyProblem(PvlogError):
    """A key that cannot be used; the message is one line naming the file."""


def fingerprint(public: Ed25519PublicKey) -> str:
    """``ed25519:`` and the SHA-256 of the raw public key, in hex (what a lab writes down)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{ALGORITHM}:{hashlib.sha256(raw).hexdigest()}"


def keygen(path: Path, passphrase: str | None) -> str:
    """A new private key at ``path`` (mode 0600, never over an existing file) and its
    public half at ``<path>.pub``; returns the fingerprint."""
    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyProblem(f"{path}: exists; a key is never overwritten") from None
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot write: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = key.public_key()
    pub = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    Path(f"{path}.pub").write_bytes(pub)
    return fingerprint(public)


def load_private(
    path: Path, passphrase: str | Callable[[], str] | None, *, protected: bool = False
) -> Ed25519PrivateKey:
    """The private key at ``path``; refused when others may read it, and (``protected``:
    a person's key) when it has no passphrase. ``passphrase`` may be a prompt, asked
    only once the key is found to need one."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot read the key: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyProblem(
            f"{path}: the private key is readable by others (mode {stat.S_IMODE(mode):04o}); "
            f"chmod 600 {path}"
        )
    encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
    if protected and not encrypted:
        raise KeyProblem(f"{path}: a person's key must be protected by a passphrase")
    if encrypted and callable(passphrase):
        passphrase = passphrase()
    if encrypted and not passphrase:
        raise KeyProblem(f"{path}: the key is protected by a passphrase: none was given")
    try:
        key = serialization.load_pem_private_key(
            data, passphrase.encode() if encrypted and isinstance(passphrase, str) else None
        )
    except ValueError:
        raise KeyProblem(f"{path}: a wrong passphrase, or not a key") from None
    except TypeError as exc:
        raise KeyProblem(f"{path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProblem(f"{path}: not an Ed25519 key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    """A public key file (``.pub``, as ``keygen`` writes it)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot read the key: {exc.strerror}") from None
    except ValueError:
        raise KeyProblem(f"{path}: not a public key (PEM)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyProblem(f"{path}: not an Ed25519 key")
    return key


class DuplicateKey(PvlogError, ValueError):
    """A JSON object naming one key twice: refused, as two readers may take either."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for k, v in pairs:
        if k in seen:
            raise DuplicateKey(f"the key {k!r} is given twice")
        seen[k] = v
    return seen


def strict_loads(data: str | bytes) -> Any:
    """JSON as pvlog reads every signed document: each object's keys unique (a
    ``"pass": false ... "pass": true`` is refused, not read as whichever came last)
    and UTF-8. Raises ``ValueError`` (``UnicodeDecodeError``, ``DuplicateKey``)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return json.loads(text, object_pairs_hook=_unique)


def signer(doc: Mapping[str, Any]) -> str | None:
    """The fingerprint a document's signature block names (None: not signed)."""
    block = doc.get("signature")
    key = block.get("key") if isinstance(block, dict) else None
    return key if isinstance(key, str) else None


def canonical(doc: Mapping[str, Any]) -> bytes:
    """What is signed: ``doc`` without its signature, keys sorted, no spaces, UTF-8."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: Ed25519PrivateKey, doc: Mapping[str, Any]) -> dict[str, str]:
    """The ``signature`` block for ``doc``."""
    public = key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "algorithm": ALGORITHM,
        "key": fingerprint(public),
        "public_key": base64.b64encode(raw).decode(),
        "value": base64.b64encode(key.sign(canonical(doc))).decode(),
    }


def check(doc: Mapping[str, Any], trusted: Set[str] = frozenset()) -> str | None:
    """What is wrong with ``doc``'s signature (None: it holds). With ``trusted``
    fingerprints, a document signed by another key, or not signed, is wrong too."""
    block = doc.get("signature")
    if not isinstance(block, dict):
        return "not signed" if trusted else None
    try:
        raw = base64.b64decode(block["public_key"], validate=True)
        public = Ed25519PublicKey.from_public_bytes(raw)
        value = base64.b64decode(block["value"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        return "its signature block is malformed"
    if fingerprint(public) != block.get("key"):
        return "its signature names another key than the one it carries"
    try:
        public.verify(value, canonical(doc))
    except InvalidSignature:
        return f"signature by {block['key'][:23]}... does not match: edited after signing"
    if trusted and block["key"] not in trusted:
        return f"signed by {block['key'][:23]}..., which is not a trusted key"
    return None
