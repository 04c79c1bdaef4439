"""``registry-node transfers``: an operator sends a cross-border transfer from the console.

Real node processes on the session broker (the ``federation`` fixture: CHE, GHA
and THA, seeded), driven through the CLI exactly as an operator types it.
"""

from __future__ import annotations

import re

import pytest
from deploy.federation.launcher import Federation
from typer.testing import CliRunner

from registry.entrypoints.cli import EXIT_REFUSED, app

# Wide enough that rich never folds a transfer id or a reason code.
TERMINAL_WIDTH_CHARS = 250

runner = CliRunner()


def _cli(federation: Federation, party: str, *arguments: str) -> tuple[int, str]:
    node = federation.node(party)
    result = runner.invoke(
        app,
        ["--api-url", node.api_url, "--token", node.operator_token, *arguments],
        env={"COLUMNS": str(TERMINAL_WIDTH_CHARS)},
    )
    return result.exit_code, result.output


@pytest.mark.e2e
def test_an_operator_sends_and_follows_a_transfer_from_the_console(
    federation: Federation,
) -> None:
    code, output = _cli(
        federation,
        "GHA",
        "transfers",
        "send",
        "--from",
        "GHA-GOV",
        "--to-party",
        "CHE",
        "--to",
        "CHE-GOV",
        "--authorisation",
        "GHA-LOA-CA0001-001",
        "--approach",
        "CA0001",
        "--quantity",
        "150",
    )
    assert code == 0, output
    assert "COMMITTED" in output
    found = re.search(r"transfer_id\W+([0-9a-f-]{36})", output)
    assert found is not None, output
    transfer_id = found.group(1)

    code, output = _cli(federation, "CHE", "transfers", "show", transfer_id)
    assert code == 0, output
    assert "PARTICIPANT" in output
    assert "COMMITTED" in output

    code, output = _cli(federation, "GHA", "transfers", "list", "--status", "COMMITTED")
    assert code == 0, output
    assert transfer_id in output


@pytest.mark.e2e
def test_a_refused_transfer_exits_non_zero_with_its_reasons(federation: Federation) -> None:
    # THA is no party to CA0001 and Ghana's LoA does not name it.
    code, output = _cli(
        federation,
        "GHA",
        "transfers",
        "send",
        "--from",
        "GHA-GOV",
        "--to-party",
        "THA",
        "--to",
        "THA-GOV",
        "--authorisation",
        "GHA-LOA-CA0001-001",
        "--approach",
        "CA0001",
        "--quantity",
        "10",
    )
    assert code == EXIT_REFUSED, output
    assert "PARTY_NOT_IN_COOPERATIVE_APPROACH" in output or "PARTY_NOT_AUTHORISED" in output
