"""``registry-node announce-backfill``: units a node issued while it announced nothing
(API-only, or before migration 0009) are announced once it can.

The node is made by ``registry-node init``, issues units with no federation
directory (so nothing is announced), then gets its directory: the command queues
one signed unit-log record for the issuance in the outbox, and a second run
queues none.
"""

from __future__ import annotations

from pathlib import Path

from deploy.federation.launcher import free_ports
from sqlalchemy import select
from typer.testing import CliRunner

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import load_private_key_pem, public_key_base64
from a6wire.messages import UnitEvent, UnitRecord
from a6wire.topics import inbox_topic
from a6wire.verification import decode_envelope
from registry.adapters.database import make_engine
from registry.adapters.messaging import MESSAGING_TABLES
from registry.adapters.unit_of_work import SqlAlchemyUnitOfWork
from registry.application.commands import OpenAccount, RecordAuthorisation
from registry.application.commands import RegisterCooperativeApproach as Register
from registry.bootstrap import build_node
from registry.entrypoints.cli import EXIT_REFUSED, app
from registry.settings import load_settings
from tests.unit.application.support import Ledger, approach, authorisation, line

TERMINAL_WIDTH_CHARS = 250
UNIT_LOG = "a6.units"
ISSUED = 40


def _run(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(arguments), env={"COLUMNS": str(TERMINAL_WIDTH_CHARS)})
    return result.exit_code, result.output


def _unit_records(database_url: str) -> list[UnitRecord]:
    engine = make_engine(database_url)
    outbox = MESSAGING_TABLES.outbox
    try:
        with engine.connect() as connection:
            values = list(
                connection.execute(
                    select(outbox.c.value).where(outbox.c.topic == UNIT_LOG)
                ).scalars()
            )
    finally:
        engine.dispose()
    records = [decode_envelope(value).payload for value in values]
    return [record for record in records if isinstance(record, UnitRecord)]


def test_units_issued_while_the_node_announced_nothing_are_announced_once(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "CHE"
    port = free_ports("127.0.0.1", 1)[0]
    code, output = _run(
        "init",
        "--party=CHE",
        "--registry-id=CHE01",
        f"--data-dir={data_dir}",
        f"--api-port={port}",
        "--local",
    )
    assert code == 0, output
    env_file = data_dir / "registry.env"
    settings = load_settings(env_file)
    node = build_node(settings)  # no directory: API-only, announces nothing
    try:
        ledger = Ledger(SqlAlchemyUnitOfWork(node.engine))
        ledger.run(Register(approach()))
        ledger.run(RecordAuthorisation(authorisation()))
        ledger.run(OpenAccount("CHE-A"))
        ledger.issue("CHE-A", line(ISSUED))
    finally:
        node.close()
    database_url = settings.resolved_database_url
    assert _unit_records(database_url) == []

    code, output = _run("announce-backfill", f"--env-file={env_file}")
    assert code == EXIT_REFUSED, output
    assert "directory" in output

    directory = tmp_path / "directory.json"
    key = load_private_key_pem(data_dir / "node_ed25519.pem")
    directory.write_text(
        FederationDirectory(
            members=(
                FederationMember(
                    party="CHE",
                    registry_id="CHE01",
                    public_key_base64=public_key_base64(key),
                    inbox_topic=inbox_topic("CHE"),
                ),
            )
        ).model_dump_json()
    )
    with env_file.open("a") as config:
        config.write(f"REGISTRY_DIRECTORY_PATH={directory}\n")

    code, output = _run("announce-backfill", f"--env-file={env_file}")
    assert code == 0, output
    assert f"announced 1 ranges ({ISSUED} units)" in output
    (record,) = _unit_records(database_url)
    assert (record.event, record.party, record.first_serial, record.last_serial) == (
        UnitEvent.ISSUED,
        "CHE",
        1,
        ISSUED,
    )

    code, output = _run("announce-backfill", f"--env-file={env_file}")
    assert code == 0, output
    assert "announced 0 ranges (0 units)" in output
    assert len(_unit_records(database_url)) == 1
