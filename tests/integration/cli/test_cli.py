"""``registry-node``: init a node, serve it with uvicorn, operate it over HTTP.

The server is the real console script in a subprocess on a free port, so the
test covers what an operator runs; the operator commands go through typer's
CliRunner with ``--api-url`` pointing at it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from deploy.federation.launcher import free_ports
from typer.testing import CliRunner

from registry.entrypoints.cli import app

SERVER_START_TIMEOUT_S = 30.0
SERVER_POLL_INTERVAL_S = 0.2
SERVER_STOP_TIMEOUT_S = 10.0
# Wide enough that rich never wraps an identifier across lines in the output.
TERMINAL_WIDTH_CHARS = 250

runner = CliRunner()


def _run(*arguments: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(
        app, list(arguments), env={"COLUMNS": str(TERMINAL_WIDTH_CHARS), **(env or {})}
    )
    return result.exit_code, result.output


def _free_port() -> int:
    # Below the ephemeral range, where no outgoing connection can take it meanwhile.
    return free_ports("127.0.0.1", 1)[0]


def _config(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name: value for name, value in pairs if not name.startswith("#")}


@dataclass(frozen=True)
class RunningNode:
    api_url: str
    operator_token: str
    auditor_token: str
    data_dir: Path


@pytest.fixture
def running_node(database_url: str, tmp_path: Path) -> Iterator[RunningNode]:
    data_dir = tmp_path / "tha"
    port = _free_port()
    code, output = _run(
        "init",
        "--party=THA",
        "--registry-id=THA01",
        f"--data-dir={data_dir}",
        f"--database-url={database_url}",
        f"--api-port={port}",
    )
    assert code == 0, output
    config_path = data_dir / "registry.env"
    config = _config(config_path)
    server = subprocess.Popen(
        [sys.executable, "-m", "registry.entrypoints.cli", "serve", f"--env-file={config_path}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    api_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(api_url, server)
        yield RunningNode(
            api_url,
            config["REGISTRY_OPERATOR_TOKENS"],
            config["REGISTRY_AUDITOR_TOKENS"],
            data_dir,
        )
    finally:
        server.terminate()
        try:
            server.wait(SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_healthy(api_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read().decode() if server.stdout else ""
            pytest.fail(f"registry-node serve exited with {server.returncode}:\n{output}")
        try:
            if httpx.get(f"{api_url}/v1/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(SERVER_POLL_INTERVAL_S)
    pytest.fail(f"registry-node serve did not answer within {SERVER_START_TIMEOUT_S} s")


def test_init_writes_a_private_key_and_config(running_node: RunningNode) -> None:
    key = running_node.data_dir / "node_ed25519.pem"
    config = running_node.data_dir / "registry.env"
    for secret in (key, config):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    values = _config(config)
    assert values["REGISTRY_PARTY"] == "THA"
    assert values["REGISTRY_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert len(values["REGISTRY_OPERATOR_TOKENS"]) >= 32


def test_operator_commands_against_a_live_node(running_node: RunningNode) -> None:
    env = {
        "REGISTRY_API_URL": running_node.api_url,
        "REGISTRY_API_TOKEN": running_node.operator_token,
    }
    code, output = _run("accounts", "open", "THA-GOV-1", "--name=Government", env=env)
    assert code == 0, output
    assert "THA-GOV-1" in output
    code, output = _run("accounts", "list", env=env)
    assert code == 0, output
    assert "THA01-NDC-USE" in output

    approach = {
        "cooperative_approach_id": "CA0001",
        "participating_parties": ["THA", "CHE"],
        "vintage_from": 2021,
        "vintage_to": 2030,
        "in_force_from": "2021-01-01",
    }
    headers = {"Authorization": f"Bearer {running_node.operator_token}"}
    created = httpx.post(
        f"{running_node.api_url}/v1/cooperative-approaches", json=approach, headers=headers
    )
    assert created.status_code == 201, created.text

    code, output = _run(
        "issue",
        "--account=THA-GOV-1",
        "--quantity=100",
        "--approach=CA0001",
        "--vintage=2025",
        "--sector=energy",
        "--activity-type=solar",
        env=env,
    )
    assert code == 0, output
    assert "CA0001-THA01-THA-000000001-2025" in output

    code, output = _run("holdings", "THA-GOV-1", env=env)
    assert code == 0, output
    assert "100 units" in output

    code, output = _run(
        "cancel", "--account=THA-GOV-1", "--kind=voluntary", "--quantity=10", env=env
    )
    assert code == 0, output
    # The public totals need no token.
    code, output = _run("--api-url", running_node.api_url, "holdings")
    assert code == 0, output
    assert "90" in output


def test_api_refusals_exit_non_zero_with_the_reason(running_node: RunningNode) -> None:
    operator = ["--api-url", running_node.api_url, "--token", running_node.operator_token]
    code, output = _run(*operator, "accounts", "show", "NOPE-1")
    assert code == 1
    assert "UNKNOWN_ACCOUNT" in output
    auditor = ["--api-url", running_node.api_url, "--token", running_node.auditor_token]
    code, output = _run(*auditor, "freeze", "--reason=audit")
    assert code == 1
    assert "FORBIDDEN" in output
    code, output = _run("--api-url", running_node.api_url, "accounts", "list")
    assert code == 1
    assert "UNAUTHENTICATED" in output


def test_an_unreachable_api_is_one_sentence(tmp_path: Path) -> None:
    code, output = _run("--api-url", f"http://127.0.0.1:{_free_port()}", "status")
    assert code == 3
    assert "cannot reach the registry API" in output
    assert "Traceback" not in output


def test_bad_settings_are_listed_not_raised(tmp_path: Path) -> None:
    code, output = _run("init", "--party=tha", "--registry-id=GHA1", f"--data-dir={tmp_path}")
    assert code == 2
    assert "REGISTRY_PARTY" in output
    assert "REGISTRY_REGISTRY_ID" in output
    assert "Traceback" not in output
    assert not (tmp_path / "registry.env").exists()


def test_serve_with_bad_settings_exits_cleanly(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text(
        "REGISTRY_PARTY=THA\nREGISTRY_REGISTRY_ID=THA01\nREGISTRY_OPERATOR_TOKENS=changeme\n"
    )
    code, output = _run("serve", f"--env-file={env_file}")
    assert code == 2
    assert "placeholder" in output
    assert "Traceback" not in output


def test_init_keeps_an_existing_key_and_refuses_to_overwrite_config(tmp_path: Path) -> None:
    arguments = ["init", "--party=THA", "--registry-id=THA01", f"--data-dir={tmp_path}"]
    code, first = _run(*arguments)
    assert code == 0, first
    code, output = _run(*arguments)
    assert code == 1
    assert "--force" in output
    code, second = _run(*arguments, "--force")
    assert code == 0, second
    assert "kept existing" in second
    public_key = [line for line in first.splitlines() if line.startswith("public_key=")]
    assert public_key
    assert public_key[0] in second


def test_ndc_set_show_and_the_ca_summary(running_node: RunningNode, tmp_path: Path) -> None:
    operator = ["--api-url", running_node.api_url, "--token", running_node.operator_token]
    config = tmp_path / "ndc.json"
    config.write_text(
        '{"ndc_type": "MULTI_YEAR", "period_start": 2021, "period_end": 2025, "method": "ANNUAL"}'
    )
    code, output = _run(*operator, "ndc", "set", str(config))
    assert code == 0, output
    assert "NDC v1" in output
    code, output = _run(*operator, "ndc", "show")
    assert code == 0, output
    assert "MULTI_YEAR" in output
    code, output = _run("--api-url", running_node.api_url, "ca-summary", "--year=2023")
    assert code == 0, output
    assert "THA tCO2e (MULTI_YEAR, ANNUAL, 2021-2025)" in output
    config.write_text('{"ndc_type": "MULTI_YEAR", "period_start": 2021, "period_end": 2025}')
    code, output = _run(*operator, "ndc", "set", str(config))
    assert (code, "MALFORMED_REQUEST" in output) == (1, True)
