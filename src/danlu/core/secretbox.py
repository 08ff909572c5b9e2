"""Secrets at rest (upstream API keys): AES-256-GCM under a key derived from the server secret.

The server secret (DANLU_SECRET_KEY, or HOME/secret.key) never leaves the server; the
database holds only sealed values, so a leaked database or backup does not leak the
providers' keys. Sealed values carry a version prefix so the scheme can change later.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from danlu.core.errors import ConfigError

_VERSION = "v1:"


class SecretBox:
    def __init__(self, server_secret: bytes):
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"danlu secret box v1"
        ).derive(server_secret)
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, *, context: str = "") -> str:
        """Encrypt ``plaintext``; ``context`` (say, the provider's name) is bound to it."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, *, context: str = "") -> str:
        if not sealed.startswith(_VERSION):
            raise ConfigError("a stored secret has an unknown format")
        raw = base64.urlsafe_b64decode(sealed[len(_VERSION) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise ConfigError(
                "a stored secret cannot be decrypted: the server secret (DANLU_SECRET_KEY or "
                "HOME/secret.key) is not the one it was sealed with"
            ) from None


def mask(secret: str) -> str:
    """What may be shown of a secret: its start and its last four characters."""
    if len(secret) <= 8:
        return "****"
    return f"{secret[:3]}…{secret[-4:]}"
