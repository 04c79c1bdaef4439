"""``registry-node aef check`` and ``aef consistency`` on exported files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from registry.adapters.in_memory import InMemoryUnitOfWork
from registry.entrypoints.cli import EXIT_BAD_SETTINGS, EXIT_REFUSED, app
from tests.unit.application.support import Ledger
from tests.unit.reports.support import actions, export, trade

runner = CliRunner()


def _files(tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    sender, receiver = Ledger(InMemoryUnitOfWork()), Ledger(InMemoryUnitOfWork())
    trade(sender, receiver)
    che, gha = tmp_path / "che.json", tmp_path / "gha.json"
    che.write_text(json.dumps(export(sender)))
    receiver_document = export(receiver)
    gha.write_text(json.dumps(receiver_document))
    return che, gha, receiver_document


def test_check_passes_a_correct_file_and_lists_problems(tmp_path: Path) -> None:
    che, _, _ = _files(tmp_path)
    result = runner.invoke(app, ["aef", "check", str(che)])
    assert result.exit_code == 0, result.output
    document = json.loads(che.read_text())
    actions(document)[0]["quantity"] = 0
    che.write_text(json.dumps(document))
    result = runner.invoke(app, ["aef", "check", str(che)])
    assert result.exit_code == EXIT_REFUSED
    assert "actions[0].quantity" in result.output


def test_consistency_agrees_then_finds_the_corruption(tmp_path: Path) -> None:
    che, gha, receiver_document = _files(tmp_path)
    result = runner.invoke(app, ["aef", "consistency", str(che), str(gha)])
    assert result.exit_code == 0, result.output
    corrupted = copy.deepcopy(receiver_document)
    actions(corrupted).pop(0)
    gha.write_text(json.dumps(corrupted))
    result = runner.invoke(app, ["aef", "consistency", str(che), str(gha)])
    assert result.exit_code == EXIT_REFUSED
    assert "missing_acquisition" in result.output


def test_consistency_needs_two_readable_files(tmp_path: Path) -> None:
    che, _, _ = _files(tmp_path)
    assert runner.invoke(app, ["aef", "consistency", str(che)]).exit_code == EXIT_BAD_SETTINGS
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    result = runner.invoke(app, ["aef", "consistency", str(che), str(junk)])
    assert result.exit_code == EXIT_BAD_SETTINGS
