"""How one node proves who it is to the Kafka brokers: mutual TLS, or nothing (PLAINTEXT).

The federation uses mTLS (see the README, "Operating a node in a federation"): the
node presents a certificate issued by the federation CA, whose common name is its
Kafka principal (``User:party.CHE``), and checks the brokers' certificates against
the same CA. ``KafkaTls`` names the three PEM files; ``ssl_context`` loads them into
one context shared by the node's producer, consumers and admin client, and says in
one sentence which file is wrong when it cannot.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import KafkaSecurityError

# Kafka 4 brokers speak TLS 1.2 and 1.3; nothing older is offered.
TLS_MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


@dataclass(frozen=True, slots=True)
class KafkaTls:
    """The PEM files of a node's mTLS identity."""

    ca_path: Path
    cert_path: Path
    key_path: Path

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that verifies the brokers and presents this node's certificate."""
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_path))
        except (OSError, ssl.SSLError) as error:
            raise KafkaSecurityError(
                f"the Kafka CA certificate {self.ca_path} (REGISTRY_KAFKA_SSL_CA_PATH) "
                f"cannot be loaded: {_reason(error)}"
            ) from None
        context.minimum_version = TLS_MINIMUM_VERSION
        try:
            context.load_cert_chain(str(self.cert_path), str(self.key_path))
        except (OSError, ssl.SSLError) as error:
            raise KafkaSecurityError(
                f"the node's Kafka certificate {self.cert_path} and key {self.key_path} "
                "(REGISTRY_KAFKA_SSL_CERT_PATH, REGISTRY_KAFKA_SSL_KEY_PATH) cannot be loaded "
                f"as a matching PEM pair: {_reason(error)}"
            ) from None
        return context


def client_security_options(tls: KafkaTls | None) -> dict[str, Any]:
    """aiokafka's connection options for ``tls`` (PLAINTEXT when None)."""
    if tls is None:
        return {"security_protocol": "PLAINTEXT"}
    return {"security_protocol": "SSL", "ssl_context": tls.ssl_context()}


def _reason(error: OSError | ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLError):
        return str(error.reason or error)
    return str(error.strerror or error)
