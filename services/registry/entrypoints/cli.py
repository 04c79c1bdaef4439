"""``registry-node``: set up, run and operate one Party's registry node.

``init`` and ``serve`` work on the local machine; every other command is an
operator's call to a running node's REST API over HTTP (``--api-url`` and
``--token``, or ``REGISTRY_API_URL`` and ``REGISTRY_API_TOKEN``), so the CLI
goes through exactly the same authentication, validation and audit trail as
any other client.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.table import Table

from registry.bootstrap import build_node
from registry.entrypoints.logging_config import configure_logging
from registry.settings import (
    DEFAULT_API_HOST,
    DEFAULT_API_PORT,
    DEFAULT_DATA_DIR,
    DEFAULT_KAFKA_BOOTSTRAP_SERVERS,
    ENV_PREFIX,
    KEY_FILE_NAME,
    Settings,
    SettingsError,
    load_settings,
)

CONFIG_FILE_NAME = "registry.env"
# Owner read/write only: the config holds API tokens and the key file is the
# node's signing identity in the federation.
SECRET_FILE_MODE = 0o600
DATA_DIR_MODE = 0o700
# 32 random bytes, URL-safe base64: well beyond the settings' minimum length.
GENERATED_TOKEN_BYTES = 32
HTTP_TIMEOUT_S = 30.0
DEFAULT_API_URL = f"http://{DEFAULT_API_HOST}:{DEFAULT_API_PORT}"

EXIT_API_ERROR = 1
EXIT_BAD_SETTINGS = 2
EXIT_UNREACHABLE = 3

app = typer.Typer(
    name="registry-node",
    help="Set up, run and operate one Party's Article 6.2 registry node.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
accounts_app = typer.Typer(help="Open, list, inspect, suspend, reopen and close accounts.")
app.add_typer(accounts_app, name="accounts")

out = Console()
err = Console(stderr=True)

EnvFileOption = Annotated[
    Path | None,
    typer.Option(
        "--env-file",
        envvar=f"{ENV_PREFIX}ENV_FILE",
        help="settings file written by `init` (REGISTRY_* lines); the environment wins",
    ),
]


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _settings_or_exit(env_file: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(env_file, **overrides)
    except SettingsError as error:
        err.print("[bold red]invalid settings:[/]")
        for problem in error.problems:
            err.print(f"  - {problem}", highlight=False)
        raise typer.Exit(EXIT_BAD_SETTINGS) from None


# ---------------------------------------------------------------------------
# init and serve: the local machine


def _write_private_file(path: Path, content: bytes) -> None:
    """Create ``path`` readable by its owner only, from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, SECRET_FILE_MODE)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    # O_CREAT's mode does not apply to a file that already existed.
    path.chmod(SECRET_FILE_MODE)


def _load_or_create_key(key_path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The node's Ed25519 key; an existing key is kept, since it is the node's identity."""
    if key_path.exists():
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            _fail(f"{key_path} holds a key that is not Ed25519", EXIT_BAD_SETTINGS)
        return loaded, False
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private_file(key_path, pem)
    return key, True


def public_key_base64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _config_text(values: Mapping[str, str]) -> str:
    lines = [
        "# Settings of one registry node, written by `registry-node init`.",
        "# Environment variables with the same names override these lines.",
    ]
    lines.extend(f"{ENV_PREFIX}{name.upper()}={value}" for name, value in values.items())
    return "\n".join(lines) + "\n"


@app.command()
def init(
    party: Annotated[str, typer.Option(help="ISO 3166 alpha-3 code of the Party, e.g. THA")],
    registry_id: Annotated[str, typer.Option(help="the Party code and two digits, e.g. THA01")],
    data_dir: Annotated[Path, typer.Option(help="where the database, key and config live")] = (
        DEFAULT_DATA_DIR
    ),
    database_url: Annotated[
        str, typer.Option(help="SQLAlchemy URL; default: a SQLite file in the data dir")
    ] = "",
    kafka_bootstrap_servers: Annotated[str, typer.Option()] = DEFAULT_KAFKA_BOOTSTRAP_SERVERS,
    api_host: Annotated[str, typer.Option()] = DEFAULT_API_HOST,
    api_port: Annotated[int, typer.Option()] = DEFAULT_API_PORT,
    config: Annotated[
        Path | None,
        typer.Option(help=f"config file to write; default: DATA_DIR/{CONFIG_FILE_NAME}"),
    ] = None,
    local_mode: Annotated[bool, typer.Option("--local/--no-local")] = False,
    force: Annotated[bool, typer.Option(help="overwrite an existing config file")] = False,
) -> None:
    """Create the data dir, database, node key and config file of a new node."""
    data_dir = data_dir.resolve()
    config_path = config or data_dir / CONFIG_FILE_NAME
    if config_path.exists() and not force:
        _fail(f"{config_path} exists; pass --force to replace it (tokens change)", EXIT_API_ERROR)
    values = {
        "party": party,
        "registry_id": registry_id,
        "data_dir": str(data_dir),
        "database_url": database_url or f"sqlite:///{data_dir / 'registry.sqlite3'}",
        "kafka_bootstrap_servers": kafka_bootstrap_servers,
        "api_host": api_host,
        "api_port": str(api_port),
        "operator_tokens": secrets.token_urlsafe(GENERATED_TOKEN_BYTES),
        "auditor_tokens": secrets.token_urlsafe(GENERATED_TOKEN_BYTES),
        "key_path": str(data_dir / KEY_FILE_NAME),
        "local_mode": str(local_mode).lower(),
    }
    # Validate before touching the disk, so a typo leaves nothing half-made.
    settings = _settings_or_exit(None, **values)
    data_dir.mkdir(parents=True, exist_ok=True, mode=DATA_DIR_MODE)
    key, created = _load_or_create_key(settings.resolved_key_path)
    node = build_node(settings, migrate=True)
    node.close()
    _write_private_file(config_path, _config_text(values).encode())
    _print_init_summary(settings, config_path, public_key_base64(key), created)


def _print_init_summary(
    settings: Settings, config_path: Path, public_key: str, created: bool
) -> None:
    table = Table(title=f"registry node {settings.registry_id} ready", show_header=False)
    table.add_row("party", settings.party)
    table.add_row("registry id", settings.registry_id)
    table.add_row("database", settings.resolved_database_url)
    table.add_row("config file", str(config_path))
    key_note = "created" if created else "kept existing"
    table.add_row("key file", f"{settings.resolved_key_path} ({key_note})")
    table.add_row("public key (Ed25519, base64)", public_key)
    table.add_row("operator token", settings.operator_tokens[0])
    table.add_row("auditor token", settings.auditor_tokens[0])
    out.print(table)
    out.print(f"Start it with: registry-node serve --env-file {config_path}", highlight=False)
    # The bare key on its own line, for scripts: `registry-node init ... | tail -1`.
    print(f"public_key={public_key}")


@app.command()
def serve(
    env_file: EnvFileOption = None,
    host: Annotated[str | None, typer.Option(help="default: REGISTRY_API_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default: REGISTRY_API_PORT")] = None,
    log_level: Annotated[str, typer.Option()] = "info",
) -> None:
    """Run the operator API with uvicorn (migrating the database first)."""
    import uvicorn

    from registry.entrypoints.api import create_app

    settings = _settings_or_exit(env_file)
    configure_logging(log_level)
    node = build_node(settings, migrate=True)
    try:
        uvicorn.run(
            create_app(node),
            host=host or settings.api_host,
            port=port or settings.api_port,
            log_level=log_level,
            # structlog already owns the root logger; uvicorn's own config would
            # add a second, differently formatted handler.
            log_config=None,
        )
    finally:
        node.close()


# ---------------------------------------------------------------------------
# Operator commands: calls to a running node's API


class ApiClient:
    """A thin httpx wrapper that turns the API's error body into a clean exit."""

    def __init__(self, api_url: str, token: str | None, transport: httpx.BaseTransport | None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(
            base_url=api_url.rstrip("/"),
            headers=headers,
            timeout=HTTP_TIMEOUT_S,
            transport=transport,
        )
        self._api_url = api_url

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        clean = {name: value for name, value in (params or {}).items() if value is not None}
        return self._send("GET", path, params=clean)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        # One fresh key per invocation: a retry inside httpx or a proxy cannot
        # run the command twice, while a second CLI invocation is a new command.
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        return self._send("POST", path, json=dict(body or {}), headers=headers)

    def _send(self, method: str, path: str, **options: Any) -> Any:
        try:
            response = self._client.request(method, f"/v1{path}", **options)
        except httpx.TransportError as error:
            _fail(f"cannot reach the registry API at {self._api_url}: {error}", EXIT_UNREACHABLE)
        if response.is_success:
            return response.json()
        try:
            body = response.json()
            reason, message = body["reason"], body["message"]
        except (ValueError, KeyError, TypeError):
            reason, message = f"HTTP_{response.status_code}", response.text[:200]
        _fail(f"{reason}: {message}", EXIT_API_ERROR)


# Tests set this to route the CLI's HTTP calls into an in-process app.
_transport_override: httpx.BaseTransport | None = None


def _client(ctx: typer.Context) -> ApiClient:
    options: dict[str, Any] = ctx.obj or {}
    return ApiClient(options["api_url"], options["token"], _transport_override)


@app.callback()
def _global_options(
    ctx: typer.Context,
    api_url: Annotated[
        str, typer.Option(envvar=f"{ENV_PREFIX}API_URL", help="base URL of the node's API")
    ] = DEFAULT_API_URL,
    token: Annotated[
        str | None,
        typer.Option(envvar=f"{ENV_PREFIX}API_TOKEN", help="operator or auditor bearer token"),
    ] = None,
) -> None:
    ctx.obj = {"api_url": api_url, "token": token}


def _print_rows(title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    out.print(table)


def _print_record(title: str, record: Mapping[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    for name, value in record.items():
        table.add_row(name, _cell(value))
    out.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_cell(item) for item in value)
    return str(value)


def main() -> None:
    """Console script ``registry-node``."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
