"""Ed25519 key helpers, and the only file I/O of the wire package.

A node's private key lives in a PEM file (PKCS#8, unencrypted, mode 0600;
encrypt it at rest with the platform's secret store); its public key is
published in the federation directory as base64 of the raw 32 bytes.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from a6wire.directory import FederationDirectory, SignedDirectory

PRIVATE_KEY_SEED_LENGTH_BYTES = 32
PRIVATE_KEY_FILE_MODE = 0o600
NEXT_KEY_SUFFIX = ".next"


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """A key from 32 given bytes: for tests and simulations that must replay exactly."""
    if len(seed) != PRIVATE_KEY_SEED_LENGTH_BYTES:
        raise ValueError(f"an Ed25519 seed is {PRIVATE_KEY_SEED_LENGTH_BYTES} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_base64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def private_key_to_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_from_pem(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the PEM file does not hold an Ed25519 private key")
    return key


def save_private_key_pem(key: Ed25519PrivateKey, path: Path) -> None:
    """Write the key readable by its owner only, creating the file exclusively."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_KEY_FILE_MODE)
    with os.fdopen(descriptor, "wb") as file:
        file.write(private_key_to_pem(key))


def load_private_key_pem(path: Path) -> Ed25519PrivateKey:
    return private_key_from_pem(path.read_bytes())


def read_directory_file(path: Path) -> FederationDirectory | SignedDirectory:
    """A directory file: the unsigned genesis (``{"members": ...}``) or a signed version.

    The signature of a signed version is not checked here: that takes the
    authority's keys (``a6wire.directory.check_signed``).
    """
    data = path.read_bytes()
    try:
        raw = json.loads(data)
    except ValueError:
        raw = None  # refused below, by the genesis format's parser, with its explanation
    if isinstance(raw, dict) and "directory" in raw:
        return SignedDirectory.from_json(data)
    return FederationDirectory.from_json(data)


def load_federation_directory(path: Path) -> FederationDirectory:
    """The members of a directory file of either kind, for tools the admin runs on its own files."""
    read = read_directory_file(path)
    return read.directory if isinstance(read, SignedDirectory) else read


def next_key_path(key_path: Path) -> Path:
    """Where an operator puts the node's next signing key during a rotation: ``<key>.next``."""
    return key_path.with_name(key_path.name + NEXT_KEY_SUFFIX)
