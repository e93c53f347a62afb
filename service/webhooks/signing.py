"""Signing secrets: made, kept encrypted at rest, and used to sign each delivery.

The secret must be recoverable to sign, so it is not hashed: it is encrypted with AES-GCM
under the deployment's data key, bound to the subscription id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Huimin-Signature"


def new_secret() -> str:
    """A fresh signing secret (shown to the client once)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def encrypt_secret(secret: str, *, key: bytes, subscription_id: str) -> str:
    """AES-GCM ciphertext (nonce + ciphertext, base64url) of a secret."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), subscription_id.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt_secret(blob: str, *, key: bytes, subscription_id: str) -> str:
    """The secret from :func:`encrypt_secret` output."""
    raw = base64.urlsafe_b64decode(blob)
    return AESGCM(key).decrypt(raw[:12], raw[12:], subscription_id.encode()).decode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 over ``"{timestamp}.{body}"``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Huimin-Signature`` value: ``t=<unix seconds>,v1=<hex>``."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify_signature(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: check the timestamp is recent and one v1 signature matches."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k.strip() == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit() or abs(now - int(stamps[0])) > tolerance:
        return False
    expected = signature(secret, int(stamps[0]), body)
    return any(k.strip() == "v1" and hmac.compare_digest(v.strip(), expected) for k, v in parts)
