#!/usr/bin/env python3
"""The federation's Kafka PKI: one CA, and a key and certificate per Party, broker and admin.

    python deploy/kafka/pki.py create --dir DIR --party CHE --party GHA [--brokers 3]
    python deploy/kafka/pki.py create --dir DIR --directory federation.json [--brokers 3]
    python deploy/kafka/pki.py request --dir KEYDIR --party CHE     # at the Party
    python deploy/kafka/pki.py sign --dir DIR --party CHE --csr node.csr  # at the admin

``request`` and ``sign`` keep a Party's key at the Party: it creates its key and a
certificate signing request, the admin signs the request (after checking that it asks
for that Party's principal) and returns only the certificate.

Layout under DIR (keys are created with mode 0600, readable by their owner only)::

    ca/ca.crt  ca/ca.key                    the federation CA (the key never leaves here)
    brokers/broker-N/broker.crt .key .pem   .pem = key + certificate, Kafka's PEM keystore
    admin/admin.crt  admin/admin.key        the federation admin principal
    parties/CHE/node.crt  node.key          one per Party, handed to that Party's operator

Each certificate's subject is only a common name, and the brokers map a client's
certificate to the Kafka principal ``User:<CN>`` (``ssl.principal.mapping.rules``):
``User:party.CHE``, ``User:broker-1``, ``User:federation-admin``. Broker certificates
carry 127.0.0.1 and ``localhost`` as subject alternative names, so clients verify the
host name. ``create`` is idempotent: an existing CA, key or certificate is kept, so a
Party added later gets a certificate from the same CA without re-issuing the others.

Uses the ``cryptography`` package (a dependency of the project); no openssl binary.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# P-256: every TLS stack Kafka or Python uses speaks it, and keys are small.
CURVE = ec.SECP256R1()
CA_VALIDITY_DAYS = 3650
LEAF_VALIDITY_DAYS = 825
# A clock a little behind the issuer's must not see a certificate "not yet valid".
BACKDATE_MINUTES = 5
KEY_FILE_MODE = 0o600
CERT_FILE_MODE = 0o644
DIR_MODE = 0o755

CA_COMMON_NAME = "A6 Federation CA"
ADMIN_COMMON_NAME = "federation-admin"
BROKER_COMMON_NAME_TEMPLATE = "broker-{index}"
PARTY_COMMON_NAME_PREFIX = "party."
BROKER_HOST_NAMES = ("localhost",)
BROKER_IP_ADDRESSES = ("127.0.0.1",)
# Kafka maps the certificate's subject to a principal with this rule: the CN alone.
PRINCIPAL_MAPPING_RULE = "RULE:^CN=([^,]+)$/$1/,DEFAULT"
BROKER_COUNT_MAX = 9


class PkiError(RuntimeError):
    """The PKI cannot be created as asked; the message says why."""


def party_principal(party: str) -> str:
    """The Kafka principal name of ``party``'s node, e.g. ``party.CHE``."""
    return f"{PARTY_COMMON_NAME_PREFIX}{party}"


def broker_principal(index: int) -> str:
    return BROKER_COMMON_NAME_TEMPLATE.format(index=index)


@dataclass(frozen=True)
class Identity:
    """Where one principal's key and certificate are (and the CA that signed it)."""

    principal: str
    key_path: Path
    cert_path: Path
    ca_path: Path


@dataclass(frozen=True)
class FederationPki:
    """Every identity ``create_pki`` wrote, by role."""

    root: Path
    ca_cert_path: Path
    admin: Identity
    brokers: tuple[Identity, ...]
    parties: dict[str, Identity]

    def broker_keystore_path(self, index: int) -> Path:
        """Key and certificate in one PEM file, as Kafka's ``ssl.keystore.type=PEM`` reads it."""
        return self.brokers[index - 1].key_path.with_suffix(".pem")


# ------------------------------------------------------------------------------- files


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start: never a moment world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    path.write_bytes(data)
    path.chmod(CERT_FILE_MODE)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # Unencrypted PKCS#8: what Kafka's PEM keystore and Python's ssl module both load.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path} is not an elliptic-curve private key")
    return key


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# ---------------------------------------------------------------------------------- CA


def _ensure_ca(root: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key_path = root / "ca" / "ca.key"
    cert_path = root / "ca" / "ca.crt"
    if key_path.exists() and cert_path.exists():
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        return _load_key(key_path), certificate, cert_path
    if key_path.exists() or cert_path.exists():
        raise PkiError(f"{root / 'ca'} holds a CA key or certificate without the other")
    key = ec.generate_private_key(CURVE)
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_COMMON_NAME))
        .issuer_name(_name(CA_COMMON_NAME))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=BACKDATE_MINUTES))
        .not_valid_after(now + datetime.timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return key, certificate, cert_path


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_path: Path,
    common_name: str,
    key_path: Path,
    cert_path: Path,
    *,
    server: bool,
) -> Identity:
    identity = Identity(common_name, key_path, cert_path, ca_path)
    if key_path.exists() and cert_path.exists():
        existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if existing.issuer != ca_cert.subject:
            raise PkiError(f"{cert_path} was not issued by the CA in {ca_path.parent}")
        return identity
    if key_path.exists() or cert_path.exists():
        raise PkiError(f"{key_path.parent} holds a key or certificate without the other")
    key = ec.generate_private_key(CURVE)
    certificate = _sign_leaf(ca_key, ca_cert, common_name, key.public_key(), server=server)
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, cert_pem)
    if server:
        # Kafka's PEM keystore: the private key, then the certificate chain.
        _write_private(key_path.with_suffix(".pem"), _key_pem(key) + cert_pem)
    return identity


def _sign_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    public_key: ec.EllipticCurvePublicKey,
    *,
    server: bool,
) -> x509.Certificate:
    now = _now()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server:
        # A broker is a server to clients and a client to the other brokers.
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=BACKDATE_MINUTES))
        .not_valid_after(now + datetime.timedelta(days=LEAF_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name) for name in BROKER_HOST_NAMES]
                + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in BROKER_IP_ADDRESSES]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256())


# ------------------------------------------------------------------------------- public


def create_pki(root: Path | str, parties: Iterable[str], brokers: int = 1) -> FederationPki:
    """The CA, ``brokers`` broker identities, the admin and each Party's identity in ``root``."""
    if not 1 <= brokers <= BROKER_COUNT_MAX:
        raise PkiError(f"--brokers must be between 1 and {BROKER_COUNT_MAX}, not {brokers}")
    base = Path(root).resolve()
    ca_key, ca_cert, ca_path = _ensure_ca(base)
    broker_identities = tuple(
        _issue(
            ca_key,
            ca_cert,
            ca_path,
            broker_principal(index),
            base / "brokers" / f"broker-{index}" / "broker.key",
            base / "brokers" / f"broker-{index}" / "broker.crt",
            server=True,
        )
        for index in range(1, brokers + 1)
    )
    admin = _issue(
        ca_key,
        ca_cert,
        ca_path,
        ADMIN_COMMON_NAME,
        base / "admin" / "admin.key",
        base / "admin" / "admin.crt",
        server=False,
    )
    party_identities = {
        party: _issue(
            ca_key,
            ca_cert,
            ca_path,
            party_principal(party),
            base / "parties" / party / "node.key",
            base / "parties" / party / "node.crt",
            server=False,
        )
        for party in sorted(set(parties))
    }
    return FederationPki(base, ca_path, admin, broker_identities, party_identities)


def request_certificate(out_dir: Path | str, party: str) -> tuple[Path, Path]:
    """A Party's own key (0600, it never leaves ``out_dir``) and a signing request for it.

    The Party sends only ``node.csr`` to the federation admin, who signs it with
    :func:`sign_request`; the admin never holds the Party's key.
    """
    base = Path(out_dir).resolve()
    key_path, csr_path = base / "node.key", base / "node.csr"
    if key_path.exists() or csr_path.exists():
        raise PkiError(f"{base} already holds a node key or request; remove them to start over")
    key = ec.generate_private_key(CURVE)
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(party_principal(party)))
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    _write_public(csr_path, request.public_bytes(serialization.Encoding.PEM))
    return key_path, csr_path


def sign_request(root: Path | str, csr_path: Path | str, party: str) -> Path:
    """Sign a Party's certificate request with the federation CA; the certificate's path.

    The request must be validly self-signed and name exactly ``party``'s principal,
    so one Party cannot obtain a certificate that makes it another.
    """
    base = Path(root).resolve()
    ca_key, ca_cert, _ = _ensure_ca(base)
    try:
        request = x509.load_pem_x509_csr(Path(csr_path).read_bytes())
    except ValueError:
        raise PkiError(f"{csr_path} is not a PEM certificate signing request") from None
    if not request.is_signature_valid:
        raise PkiError(f"{csr_path} is not signed by the key it carries")
    expected = _name(party_principal(party))
    if request.subject != expected:
        raise PkiError(
            f"{csr_path} asks for {request.subject.rfc4514_string()}, "
            f"not {expected.rfc4514_string()}"
        )
    public_key = request.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise PkiError(f"{csr_path} carries no elliptic-curve public key")
    cert_path = base / "parties" / party / "node.crt"
    if cert_path.exists():
        raise PkiError(f"{cert_path} exists: remove it to issue {party} a new certificate")
    certificate = _sign_leaf(ca_key, ca_cert, party_principal(party), public_key, server=False)
    _write_public(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path


def parties_of_directory(path: Path) -> list[str]:
    """The Party codes of a federation directory file (``{"members": [{"party": ...}]}``)."""
    try:
        document = json.loads(path.read_text())
        return [str(member["party"]) for member in document["members"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PkiError(f"cannot read the Parties of {path}: {error}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The federation's Kafka CA and certificates.")
    parser.add_argument("command", choices=["create", "request", "sign"])
    parser.add_argument("--dir", type=Path, required=True, help="the PKI (request: key dir)")
    parser.add_argument("--csr", type=Path, help="sign: the Party's certificate request")
    parser.add_argument("--party", action="append", default=[], help="a Party code (repeat)")
    parser.add_argument("--directory", type=Path, help="take the Parties from this directory")
    parser.add_argument("--brokers", type=int, default=1, help="broker identities to issue")
    args = parser.parse_args(argv)
    parties = list(args.party)
    try:
        if args.command in ("request", "sign"):
            if len(parties) != 1:
                raise PkiError(f"{args.command} needs exactly one --party")
            if args.command == "request":
                key_path, csr_path = request_certificate(args.dir, parties[0])
                print(f"[pki] key {key_path} (keep it), request {csr_path} (send it)")
                return 0
            if args.csr is None:
                raise PkiError("sign needs --csr")
            print(f"[pki] certificate {sign_request(args.dir, args.csr, parties[0])}")
            return 0
        if args.directory is not None:
            parties.extend(parties_of_directory(args.directory))
        pki = create_pki(args.dir, parties, brokers=args.brokers)
    except (PkiError, OSError) as error:
        print(f"[pki] error: {error}", file=sys.stderr)
        return 1
    print(f"[pki] CA {pki.ca_cert_path}", file=sys.stderr)
    for identity in (*pki.brokers, pki.admin, *pki.parties.values()):
        print(f"[pki] User:{identity.principal}  {identity.cert_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
