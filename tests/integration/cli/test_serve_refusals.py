"""``registry-node serve`` refuses to start a node that could not transfer.

A node whose federation directory is configured but whose key or directory is
missing, unreadable or does not describe it would accept transfers it can never
sign or verify while its health said ok. It must exit non-zero with one
sentence on stderr and no traceback. Each case runs the real console script in
a subprocess, as an operator would.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from deploy.federation.launcher import free_ports
from typer.testing import CliRunner

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import generate_private_key, load_private_key_pem, public_key_base64
from a6wire.topics import inbox_topic
from registry.entrypoints.cli import EXIT_BAD_SETTINGS, app

# A refusal comes after imports and the settings check: seconds. A node that
# starts instead of refusing never exits, and this bounds the wait for that.
SERVE_REFUSAL_TIMEOUT_S = 60.0
TERMINAL_WIDTH_CHARS = 250


def _init_node(data_dir: Path) -> Path:
    """``registry-node init`` (local mode, SQLite) on a free port; returns the env file."""
    port = free_ports("127.0.0.1", 1)[0]
    result = CliRunner().invoke(
        app,
        [
            "init",
            "--party=THA",
            "--registry-id=THA01",
            f"--data-dir={data_dir}",
            f"--api-port={port}",
            "--local",
        ],
        env={"COLUMNS": str(TERMINAL_WIDTH_CHARS)},
    )
    assert result.exit_code == 0, result.output
    return data_dir / "registry.env"


def _member(party: str, public_key: str) -> FederationMember:
    return FederationMember(
        party=party,
        registry_id=f"{party}01",
        public_key_base64=public_key,
        inbox_topic=inbox_topic(party),
    )


def _write_directory(path: Path, *members: FederationMember) -> None:
    path.write_text(FederationDirectory(members=members).model_dump_json())


def _own_key(data_dir: Path) -> str:
    return public_key_base64(load_private_key_pem(data_dir / "node_ed25519.pem"))


def _other_key() -> str:
    return public_key_base64(generate_private_key())


def _key_missing(data_dir: Path, directory: Path) -> None:
    _write_directory(directory, _member("THA", _own_key(data_dir)))
    (data_dir / "node_ed25519.pem").unlink()


def _key_unreadable(data_dir: Path, directory: Path) -> None:
    # A directory where the key file should be: unreadable even for root.
    _write_directory(directory, _member("THA", _own_key(data_dir)))
    (data_dir / "node_ed25519.pem").unlink()
    (data_dir / "node_ed25519.pem").mkdir()


def _key_not_a_key(data_dir: Path, directory: Path) -> None:
    _write_directory(directory, _member("THA", _own_key(data_dir)))
    (data_dir / "node_ed25519.pem").write_text("not a PEM file\n")


def _directory_missing(data_dir: Path, directory: Path) -> None:
    del data_dir, directory  # the configured path is simply never written


def _directory_not_json(data_dir: Path, directory: Path) -> None:
    del data_dir
    directory.write_text("{ this is not a directory")


def _directory_invalid(data_dir: Path, directory: Path) -> None:
    # Well-formed JSON, but a member whose key is not an Ed25519 public key.
    bad_key = base64.b64encode(b"short").decode()
    directory.write_text(
        '{"members": [{"party": "THA", "registry_id": "THA01", '
        f'"public_key_base64": "{bad_key}", "inbox_topic": "{inbox_topic("THA")}"}}]}}'
    )
    del data_dir


def _party_not_listed(data_dir: Path, directory: Path) -> None:
    del data_dir
    _write_directory(directory, _member("CHE", _other_key()))


def _public_key_mismatch(data_dir: Path, directory: Path) -> None:
    del data_dir
    _write_directory(directory, _member("THA", _other_key()))


Breakage = Callable[[Path, Path], None]


@pytest.mark.parametrize(
    ("break_node", "expected"),
    [
        (_key_missing, "node key"),
        (_key_unreadable, "cannot be read"),
        (_key_not_a_key, "not an Ed25519 private key"),
        (_directory_missing, "does not exist"),
        (_directory_not_json, "not a valid directory file"),
        (_directory_invalid, "not a valid directory file"),
        (_party_not_listed, "THA is not in the federation directory"),
        (_public_key_mismatch, "is not this node's key"),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else None,
)
def test_serve_refuses_a_node_that_could_not_transfer(
    tmp_path: Path, break_node: Breakage, expected: str
) -> None:
    data_dir = tmp_path / "tha"
    env_file = _init_node(data_dir)
    directory = tmp_path / "directory.json"
    with env_file.open("a") as config:
        config.write(f"REGISTRY_DIRECTORY_PATH={directory}\n")
    break_node(data_dir, directory)

    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "registry.entrypoints.cli", "serve", f"--env-file={env_file}"],
            capture_output=True,
            text=True,
            timeout=SERVE_REFUSAL_TIMEOUT_S,
            env={**environment, "COLUMNS": str(TERMINAL_WIDTH_CHARS)},
            check=False,
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"serve started a node that cannot transfer instead of refusing:\n{timeout}")

    assert done.returncode == EXIT_BAD_SETTINGS, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert expected in errors[0]
    # One sentence: nothing follows the error line (no multi-line explanation).
    assert done.stderr.rstrip().splitlines()[-1] == errors[0].rstrip()
