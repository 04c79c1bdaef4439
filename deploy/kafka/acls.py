#!/usr/bin/env python3
"""The federation admin's provisioning of a secured cluster: topics, then ACLs.

    .venv/bin/python deploy/kafka/acls.py apply --bootstrap 127.0.0.1:19261 \\
        --pki var/pki --directory federation.json [--replicas 3]

Connects as ``User:federation-admin`` (``PKI/admin``, a super user on the brokers that
deploy/kafka/broker.py --tls-dir starts), creates every member's inbox topic, the
decision topic, the unit log, the (compacted) snapshot topic and the (compacted)
directory topic (replication 3 and ``min.insync.replicas=2`` with ``--replicas 3``,
unclean leader election off), then writes the ACLs of
``registry.adapters.messaging.acls``: each Party reads its own inbox with its own
consumer groups, writes the other members' inboxes, reads and writes the decision
topic, the unit log and the snapshot topic, and reads the directory topic that only
the admin writes; nobody else may create, alter or delete topics. Run it again after
the directory changes (a Party joined: its inbox and ACLs are added before its node
starts): existing topics and ACLs are kept.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from a6wire.keys import load_federation_directory
from a6wire.topics import DIRECTORY_TOPIC
from registry.adapters.messaging import (
    KafkaTls,
    MessagingConfig,
    MessagingError,
    provision_federation,
)


def admin_tls(pki_dir: Path) -> KafkaTls:
    """The federation admin's mTLS identity in a PKI of deploy/kafka/pki.py."""
    root = pki_dir.resolve()
    return KafkaTls(
        ca_path=root / "ca" / "ca.crt",
        cert_path=root / "admin" / "admin.crt",
        key_path=root / "admin" / "admin.key",
    )


def member_configs(
    parties: Sequence[str], bootstrap: str, *, replicas: int
) -> dict[str, MessagingConfig]:
    """The federation's standard topic and group names for each Party."""
    return {
        party: MessagingConfig.for_party(
            party, bootstrap, production=replicas >= 3, directory_topic=DIRECTORY_TOPIC
        )
        for party in parties
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create the federation's topics and ACLs.")
    parser.add_argument("command", choices=["apply"])
    parser.add_argument("--bootstrap", required=True, help="host:port[,host:port...]")
    parser.add_argument("--pki", type=Path, required=True, help="PKI of deploy/kafka/pki.py")
    parser.add_argument("--directory", type=Path, required=True, help="federation directory")
    parser.add_argument("--replicas", type=int, choices=[1, 3], default=1)
    args = parser.parse_args(argv)
    try:
        directory = load_federation_directory(args.directory)
        parties = [member.party for member in directory.members]
        bindings = asyncio.run(
            provision_federation(
                args.bootstrap,
                member_configs(parties, args.bootstrap, replicas=args.replicas),
                tls=admin_tls(args.pki),
            )
        )
    except (OSError, ValueError, MessagingError) as error:
        print(f"[acls] error: {error}", file=sys.stderr)
        return 1
    for binding in bindings:
        print(
            f"[acls] ALLOW {binding.principal} {binding.operation.name} "
            f"{binding.resource_type.name}:{binding.resource_name}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
