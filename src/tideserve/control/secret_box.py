"""Secret access keys at rest: sealed with AES-256-GCM under a key kept apart from the database.

Why not a hash, as for passwords: SigV4 never sends the secret. The client sends an HMAC whose
key is derived from it, and the server must recompute that HMAC, so it needs the secret itself.
So the database holds each secret encrypted, and the server decrypts it when a request names
its access key id (once per key per process: api/app.py's KeyCache), then verifies as before.
A copy of the database alone (or of a backup, or of its WAL) yields only ciphertext; recovering
a secret also takes the key file, `<state-dir>/secret.key` by default or any path given by
`--secret-key-file` / TIDESERVE_SECRET_KEY_FILE, so it can live on another volume than the
database (a PostgreSQL database has no state dir at all).

Sealed form, one string in `access_keys.secret_access_key`:

    "aes256gcm1:" + urlsafe-base64(nonce (12 bytes) || ciphertext || tag (16 bytes))

with the access key id as GCM's associated data, so a sealed secret copied onto another key's
row does not open. The `cryptography` package (pyca) provides AES-GCM: a maintained, audited
implementation made for exactly this; the standard library has no authenticated cipher.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tideserve.state_files import write_private_file

SEALED_PREFIX = "aes256gcm1:"
KEY_BYTES = 32
NONCE_BYTES = 12


class SecretKeyFileError(Exception):
    """The key file exists but holds no usable key."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"an AES-256 key is {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_key_file(cls, path: Path) -> SecretBox:
        """Load the key at `path`, or create it (0600, never readable by anyone else)."""
        if not path.exists():
            encoded = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES))
            write_private_file(path, encoded + b"\n", exclusive=True)
        text = path.read_bytes().strip()
        try:
            key = base64.urlsafe_b64decode(text)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise SecretKeyFileError(
                f"{path} does not hold a base64 {KEY_BYTES}-byte key; "
                "restore it, or move it away to start with new access keys"
            )
        return cls(key)

    def seal(self, access_key_id: str, secret: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), access_key_id.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, access_key_id: str, stored: str) -> str | None:
        """The secret, or None if `stored` was sealed under another key or for another id."""
        if not is_sealed(stored):
            return None
        try:
            raw = base64.urlsafe_b64decode(stored[len(SEALED_PREFIX) :])
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], access_key_id.encode())
        except (binascii.Error, ValueError, InvalidTag):
            return None
        return plain.decode()


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED_PREFIX)
