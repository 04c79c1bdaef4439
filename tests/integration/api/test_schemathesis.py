"""Schemathesis against a real node: ``registry-node serve`` (uvicorn) in its own process.

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
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
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

from tests.integration.api.conftest import (
    HOLDING_ACCOUNT,
    OTHER_ACCOUNT,
    approach_body,
    issuance_body,
    loa_body,
)

OPERATOR_TOKEN = "operator-token-for-schemathesis-01"
# Bounded so the whole run stays well under a minute on a small shared machine.
EXAMPLES_PER_OPERATION_AND_MODE = 12
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


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the node exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/v1/health", timeout=HTTP_TIMEOUT_S).status_code == 200:
                return
        time.sleep(NODE_POLL_INTERVAL_S)
    raise RuntimeError(
        f"the node did not answer within {NODE_START_TIMEOUT_S} s:\n{log.read_text()}"
    )


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


@pytest.fixture(scope="module")
def served_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of ``registry-node serve`` on SQLite, seeded; stopped afterwards."""
    directory = tmp_path_factory.mktemp("schemathesis-node")
    port = _free_port_below_32768()
    environment = {
        **os.environ,
        "REGISTRY_PARTY": "THA",
        "REGISTRY_REGISTRY_ID": "THA01",
        "REGISTRY_DATA_DIR": str(directory),
        "REGISTRY_DATABASE_URL": f"sqlite:///{directory / 'registry.sqlite3'}",
        "REGISTRY_OPERATOR_TOKENS": OPERATOR_TOKEN,
        "REGISTRY_API_HOST": "127.0.0.1",
        "REGISTRY_API_PORT": str(port),
    }
    log = directory / "node.log"
    command = [
        str(Path(sys.executable).parent / "registry-node"),
        "serve",
        "--log-level",
        "warning",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, process, log)
        _seed(base_url)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=NODE_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=NODE_STOP_TIMEOUT_S)


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
    @given(case=operation.as_strategy(generation_mode=mode))
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
