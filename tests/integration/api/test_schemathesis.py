"""Schemathesis against a real node: the operator API served by uvicorn on a real port.

The node is the real composition (``build_node`` and ``build_transfers`` with a
federation directory, a key and the session's Kafka broker, on topic names no
other test uses), so POST /v1/transfers reserves units and sends a PREPARE
rather than answering "messaging disabled"; uvicorn serves it on a port below
32768, in a thread of this process so the test can give it those topic names.

Every operation of the OpenAPI document gets requests that fit its schema
(positive) and requests that do not (negative), sent over HTTP with an operator
token so the authenticated routes run to their handlers. Each answer must not be
a 5xx, its status must be one the document declares, and its body must match the
schema declared for that status; a negative request must be refused with a 4xx.
The node holds an approach, an LoA, two accounts and issued units first, so
positive requests reach the ledger rather than stopping at "unknown".
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import generate_private_key, public_key_base64, save_private_key_pem
from a6wire.topics import inbox_topic
from registry.bootstrap import build_node, build_transfers
from registry.entrypoints.api import create_app
from registry.settings import load_settings
from tests.integration.api.conftest import (
    HOLDING_ACCOUNT,
    OTHER_ACCOUNT,
    PARTNER_PARTY,
    approach_body,
    issuance_body,
    loa_body,
)
from tests.integration.messaging.support import UniqueNames

# Hypothesis warns when the global random state changes while a case is drawn; the
# node's own threads in this process (and schemathesis's generation) can change it,
# and none of that is an input of the test.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")

OPERATOR_TOKEN = "operator-token-for-schemathesis-01"
# Bounded so the whole run stays well under a minute on a small shared machine.
EXAMPLES_PER_OPERATION_AND_MODE = 8
NODE_START_TIMEOUT_S = 60.0
NODE_POLL_INTERVAL_S = 0.2
NODE_STOP_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 10.0
# Services that tests start listen below 32768 (the kernel's ephemeral range starts there).
PORT_RANGE = (20_000, 32_767)
PORT_ATTEMPTS_MAX = 50

POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
NEGATIVE_CHECKS = [*POSITIVE_CHECKS, negative_data_rejection]


def _free_port_below_32768() -> int:
    chooser = random.Random()
    for _ in range(PORT_ATTEMPTS_MAX):
        port = chooser.randint(*PORT_RANGE)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORT_RANGE} after {PORT_ATTEMPTS_MAX} attempts")


def _wait_healthy(base_url: str, server: uvicorn.Server) -> None:
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/v1/health", timeout=HTTP_TIMEOUT_S).status_code == 200:
                return
        if server.should_exit:
            break
        time.sleep(NODE_POLL_INTERVAL_S)
    raise RuntimeError(f"the node did not answer at {base_url} within {NODE_START_TIMEOUT_S} s")


def _seed(base_url: str) -> None:
    with httpx.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        timeout=HTTP_TIMEOUT_S,
    ) as client:
        for path, body in [
            ("/v1/cooperative-approaches", approach_body()),
            ("/v1/authorisations", loa_body()),
            ("/v1/accounts", {"account_id": HOLDING_ACCOUNT, "name": "THA gov"}),
            ("/v1/accounts", {"account_id": OTHER_ACCOUNT, "holder_entity_id": "ENT-7"}),
            ("/v1/issuances", issuance_body(1000)),
        ]:
            response = client.post(path, json=body)
            assert response.status_code == 201, response.text


def _directory(path: Path, keys: dict[str, Any]) -> Path:
    directory = FederationDirectory(
        members=tuple(
            FederationMember(
                party=party,
                registry_id=f"{party}01",
                public_key_base64=public_key_base64(key),
                inbox_topic=inbox_topic(party),
            )
            for party, key in keys.items()
        )
    )
    path.write_text(directory.model_dump_json())
    return path


@pytest.fixture(scope="module")
def served_node(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a THA node served by uvicorn over SQLite, seeded; stopped afterwards.

    CHE is in its directory but runs no node: a transfer to it stays pending.
    """
    directory = tmp_path_factory.mktemp("schemathesis-node")
    keys = {party: generate_private_key() for party in ("THA", PARTNER_PARTY)}
    key_path = directory / "node.pem"
    save_private_key_pem(keys["THA"], key_path)
    port = _free_port_below_32768()
    node_settings = load_settings(
        party="THA",
        registry_id="THA01",
        database_url=f"sqlite:///{directory / 'registry.sqlite3'}",
        data_dir=directory,
        operator_tokens=[OPERATOR_TOKEN],
        key_path=key_path,
        directory_path=_directory(directory / "directory.json", keys),
    )
    names = UniqueNames(f"test.{uuid.uuid4().hex[:12]}")
    base = build_node(node_settings, migrate=True)
    transfers, messaging = build_transfers(
        node_settings,
        base.engine,
        base.clock,
        messaging_config=names.config("THA", kafka_bootstrap, decision_partitions=1),
        inbox_topic_of=lambda party: names.topic(f"node.{party}.inbox"),
    )
    node = replace(base, transfers=transfers, messaging=messaging)
    server = uvicorn.Server(
        uvicorn.Config(create_app(node), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="schemathesis-node", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, server)
        _seed(base_url)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=NODE_STOP_TIMEOUT_S)
        base.close()


def _operations(base_url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            pytest.fail(
                f"the OpenAPI document has an operation schemathesis cannot read: {result.err()}"
            )
        operations.append(result.ok())
    return operations


def _has_inputs(operation: Any) -> bool:
    return any(
        len(list(inputs)) > 0
        for inputs in (operation.path_parameters, operation.query, operation.body)
    )


def _run(operation: Any, mode: GenerationMode, check: Callable[[Case[Any]], None]) -> None:
    # POST /v1/transfers may wait up to a minute for an outcome that, with no CHE
    # node, never comes: it answers at once here, and everything else is generated.
    fixed = {"query": {"wait_s": 0}} if operation.label == "POST /v1/transfers" else {}

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case[Any]) -> None:
        check(case)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_operation_answers_as_its_schema_says(served_node: str, mode: GenerationMode) -> None:
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    checks = POSITIVE_CHECKS if mode is GenerationMode.POSITIVE else NEGATIVE_CHECKS
    operations = _operations(served_node)
    assert len(operations) > 20, "the OpenAPI document lost its operations"

    def call(case: Case[Any]) -> None:
        case.call_and_validate(
            base_url=served_node, headers=headers, checks=checks, timeout=HTTP_TIMEOUT_S
        )

    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
            continue  # nothing to get wrong: no path, query or body
        _run(operation, mode, call)
