"""``registry-node``: set up, run and operate one Party's registry node.

``init`` and ``serve`` work on the local machine; every other command is an
operator's call to a running node's REST API over HTTP (``--api-url`` and
``--token``, or ``REGISTRY_API_URL`` and ``REGISTRY_API_TOKEN``), so the CLI
goes through exactly the same authentication, validation and audit trail as
any other client.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import structlog
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from a6wire.keys import (
    generate_private_key,
    load_private_key_pem,
    public_key_base64,
    save_private_key_pem,
)
from registry.application.unit_log_backfill import (
    BackfillResult,
    UnitLogBackfillError,
    backfill_unit_log,
)
from registry.bootstrap import BootstrapError, Node, build_node
from registry.domain.errors import DomainError
from registry.entrypoints.federation_cli import federation_app
from registry.entrypoints.logging_config import configure_logging
from registry.reports.aef import SUBMISSION_VERSION_DEFAULT
from registry.reports.checker import check_aef
from registry.reports.consistency import find_disagreements
from registry.reports.formats import ReportFormat
from registry.settings import (
    DATABASE_FILE_NAME,
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

EXIT_REFUSED = 1
EXIT_BAD_SETTINGS = 2
EXIT_UNREACHABLE = 3
# A consistency check compares one Party's report with at least one other's.
CONSISTENCY_FILES_MIN = 2

app = typer.Typer(
    name="registry-node",
    help="Set up, run and operate one Party's Article 6.2 registry node.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
accounts_app = typer.Typer(help="Open, list, inspect, suspend, reopen and close accounts.")
app.add_typer(accounts_app, name="accounts")
app.add_typer(federation_app, name="federation")

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
    # soft_wrap: one message is one line, whatever the terminal's width.
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
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


def _build_node_or_exit(settings: Settings) -> Node:
    """Migrate and wire the node, turning a database that will not open into one sentence."""
    try:
        return build_node(settings, migrate=True)
    except BootstrapError as error:
        _fail(str(error), EXIT_BAD_SETTINGS)
    except SQLAlchemyError as error:
        _fail(
            f"cannot open the database {settings.resolved_database_url!r}: "
            f"{error.__class__.__name__}: {str(error).splitlines()[0]}",
            EXIT_UNREACHABLE,
        )


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
        try:
            return load_private_key_pem(key_path), False
        except ValueError as error:
            _fail(f"{key_path}: {error}", EXIT_BAD_SETTINGS)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_private_key()
    save_private_key_pem(key, key_path)
    return key, True


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
        _fail(f"{config_path} exists; pass --force to replace it (tokens change)", EXIT_REFUSED)
    values = {
        "party": party,
        "registry_id": registry_id,
        "data_dir": str(data_dir),
        "database_url": database_url or f"sqlite:///{data_dir / DATABASE_FILE_NAME}",
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
    _build_node_or_exit(settings).close()
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
    node = _build_node_or_exit(settings)
    _backfill_at_start(node)
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


def _backfill(node: Node) -> BackfillResult:
    if node.messaging is None:
        raise UnitLogBackfillError(
            "this node announces nothing: configure its federation directory and key first"
        )
    return backfill_unit_log(node.unit_of_work())


def _backfill_at_start(node: Node) -> None:
    """Announce what the ledger did before the unit log existed (nothing, after once)."""
    if node.messaging is None:
        return
    log = structlog.get_logger(__name__)
    try:
        result = _backfill(node)
    except (UnitLogBackfillError, DomainError) as error:
        log.error(
            "unit log backfill failed: other nodes refuse transfers of the units it misses",
            error=str(error),
        )
        return
    if result.announced:
        log.info(
            "unit log backfilled",
            ranges=len(result.announced),
            quantity=result.quantity,
            party=node.settings.party,
        )


@app.command("announce-backfill")
def announce_backfill(env_file: EnvFileOption = None) -> None:
    """Announce on the unit log every issuance, use and cancellation not announced yet.

    For units of a database from before the unit log (migration 0009); idempotent,
    and `serve` runs it at every start too. The node's relay publishes the records.
    """
    settings = _settings_or_exit(env_file)
    node = _build_node_or_exit(settings)
    try:
        result = _backfill(node)
    except (UnitLogBackfillError, DomainError) as error:
        _fail(str(error), EXIT_REFUSED)
    finally:
        node.close()
    out.print(
        f"announced {len(result.announced)} ranges ({result.quantity} units) on the unit log",
        highlight=False,
    )


# ---------------------------------------------------------------------------
# Operator commands: calls to a running node's API


class ApiClient:
    """A thin httpx wrapper that turns the API's error body into a clean exit."""

    def __init__(self, api_url: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(
            base_url=api_url.rstrip("/"), headers=headers, timeout=HTTP_TIMEOUT_S
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

    def put(self, path: str, body: Mapping[str, Any]) -> Any:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        return self._send("PUT", path, json=dict(body), headers=headers)

    def download(self, path: str, params: Mapping[str, Any] | None = None) -> bytes:
        """A GET whose body is a file (CSV, XLSX), not JSON."""
        clean = {name: value for name, value in (params or {}).items() if value is not None}
        return self._response("GET", path, params=clean).content

    def _send(self, method: str, path: str, **options: Any) -> Any:
        return self._response(method, path, **options).json()

    def _response(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self._client.request(method, f"/v1{path}", **options)
        except httpx.TransportError as error:
            _fail(f"cannot reach the registry API at {self._api_url}: {error}", EXIT_UNREACHABLE)
        if response.is_success:
            return response
        try:
            body = response.json()
            reason, message = body["reason"], body["message"]
            # A refused transfer carries every reason code the ledger found.
            reason = ", ".join(body.get("reasons") or [reason])
        except (ValueError, KeyError, TypeError):
            reason, message = f"HTTP_{response.status_code}", response.text[:200]
        _fail(f"{reason}: {message}", EXIT_REFUSED)


def _client(ctx: typer.Context) -> ApiClient:
    options: dict[str, Any] = ctx.obj or {}
    return ApiClient(options["api_url"], options["token"])


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


# Options shared by the commands that move units: a quantity, or an exact range.
QuantityOption = Annotated[
    int | None, typer.Option(help="how many units (oldest blocks first)", min=1)
]
ApproachOption = Annotated[
    str | None, typer.Option("--approach", help="cooperative approach id, e.g. CA0001")
]
VintageOption = Annotated[int | None, typer.Option(help="vintage year")]
FirstOption = Annotated[
    str | None, typer.Option("--first", help="first unique identifier of an exact range")
]
LastOption = Annotated[
    str | None, typer.Option("--last", help="last unique identifier of an exact range")
]

_ACCOUNT_COLUMNS = ("account_id", "kind", "status", "holder_entity_id", "name")
_BLOCK_COLUMNS = ("first_identifier", "last_identifier", "quantity", "vintage", "sector")


def _selection(
    quantity: int | None,
    approach: str | None,
    vintage: int | None,
    first: str | None,
    last: str | None,
) -> dict[str, Any]:
    """The API's unit selection; the API itself refuses a mix of both ways."""
    fields = {
        "quantity": quantity,
        "cooperative_approach_id": approach,
        "vintage": vintage,
        "first_identifier": first,
        "last_identifier": last,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _print_movement(title: str, result: Mapping[str, Any]) -> None:
    _print_rows(f"{title}: {result['quantity']} units", result["blocks"], _BLOCK_COLUMNS)


@accounts_app.command("open")
def accounts_open(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(help="e.g. THA-ENTITY-7")],
    kind: Annotated[str, typer.Option(help="HOLDING or a retirement kind")] = "HOLDING",
    holder: Annotated[str | None, typer.Option(help="holder entity id")] = None,
    name: Annotated[str, typer.Option()] = "",
) -> None:
    """Open an account."""
    body = {"account_id": account_id, "kind": kind, "holder_entity_id": holder, "name": name}
    _print_record("account opened", _client(ctx).post("/accounts", body))


@accounts_app.command("list")
def accounts_list(ctx: typer.Context) -> None:
    """List every account."""
    _print_rows("accounts", _client(ctx).get("/accounts"), _ACCOUNT_COLUMNS)


@accounts_app.command("show")
def accounts_show(ctx: typer.Context, account_id: str) -> None:
    """Show one account."""
    _print_record("account", _client(ctx).get(f"/accounts/{account_id}"))


def _change_account(ctx: typer.Context, account_id: str, action: str) -> None:
    _print_record(f"account {action}", _client(ctx).post(f"/accounts/{account_id}/{action}"))


@accounts_app.command("suspend")
def accounts_suspend(ctx: typer.Context, account_id: str) -> None:
    """Suspend an account: it can neither send nor receive units."""
    _change_account(ctx, account_id, "suspend")


@accounts_app.command("reopen")
def accounts_reopen(ctx: typer.Context, account_id: str) -> None:
    """Reopen a suspended account."""
    _change_account(ctx, account_id, "reopen")


@accounts_app.command("close")
def accounts_close(ctx: typer.Context, account_id: str) -> None:
    """Close an empty holding account, for good."""
    _change_account(ctx, account_id, "close")


@app.command()
def status(ctx: typer.Context) -> None:
    """Show this registry's identity and whether transfers are frozen."""
    _print_record("registry", _client(ctx).get("/registry"))


@app.command()
def freeze(
    ctx: typer.Context, reason: Annotated[str, typer.Option(help="why, for the record")]
) -> None:
    """Freeze every transfer out of and within this registry."""
    _print_record("registry", _client(ctx).post("/registry/freeze", {"reason": reason}))


@app.command()
def unfreeze(ctx: typer.Context) -> None:
    """Lift the transfer freeze."""
    _print_record("registry", _client(ctx).post("/registry/unfreeze"))


@app.command()
def issue(
    ctx: typer.Context,
    account: Annotated[str, typer.Option(help="holding account to issue into")],
    quantity: Annotated[int, typer.Option(min=1)],
    approach: Annotated[str, typer.Option(help="cooperative approach id")],
    vintage: Annotated[int, typer.Option()],
    sector: Annotated[str, typer.Option()],
    activity_type: Annotated[str, typer.Option()],
    mitigation_type: Annotated[str, typer.Option()] = "emission reduction",
    gwp_values: Annotated[str, typer.Option()] = "AR5",
    authorisation: Annotated[str | None, typer.Option(help="LoA id")] = None,
) -> None:
    """Issue one block of units."""
    line = {
        "quantity": quantity,
        "cooperative_approach_id": approach,
        "vintage": vintage,
        "sector": sector,
        "activity_type": activity_type,
        "mitigation_type": mitigation_type,
        "gwp_values": gwp_values,
        "authorisation_id": authorisation,
    }
    result = _client(ctx).post("/issuances", {"account_id": account, "lines": [line]})
    _print_movement("issued", result)


@app.command("transfer-internal")
def transfer_internal(
    ctx: typer.Context,
    from_account: Annotated[str, typer.Option("--from")],
    to_account: Annotated[str, typer.Option("--to")],
    quantity: QuantityOption = None,
    approach: ApproachOption = None,
    vintage: VintageOption = None,
    first: FirstOption = None,
    last: LastOption = None,
) -> None:
    """Move units between two accounts of this registry."""
    body = {
        "from_account_id": from_account,
        "to_account_id": to_account,
        **_selection(quantity, approach, vintage, first, last),
    }
    _print_movement("transferred", _client(ctx).post("/internal-transfers", body))


transfers_app = typer.Typer(help="Cross-border transfers: send one to another Party, follow them.")
app.add_typer(transfers_app, name="transfers")

# How long `transfers send` waits by default for the transfer's outcome at this node.
TRANSFER_WAIT_DEFAULT_S = 30
_TRANSFER_COLUMNS = ("transfer_id", "role", "status", "from_party", "to_party", "quantity")
_TRANSFER_BLOCK_COLUMNS = ("first_identifier", "last_identifier", "quantity")


def _print_transfer(view: Mapping[str, Any]) -> None:
    _print_record(
        f"transfer {view['transfer_id']}",
        {name: value for name, value in view.items() if name != "blocks"},
    )
    if view.get("blocks"):
        _print_rows("blocks", view["blocks"], _TRANSFER_BLOCK_COLUMNS)


@transfers_app.command("send")
def transfers_send(
    ctx: typer.Context,
    from_account: Annotated[str, typer.Option("--from", help="account in this registry")],
    to_party: Annotated[str, typer.Option("--to-party", help="acquiring Party, e.g. CHE")],
    to_account: Annotated[str, typer.Option("--to", help="account in the acquiring registry")],
    authorisation: Annotated[str, typer.Option(help="the LoA covering the units")],
    purpose: Annotated[str, typer.Option(help="NDC or OIMP")] = "NDC",
    quantity: QuantityOption = None,
    approach: ApproachOption = None,
    vintage: VintageOption = None,
    first: FirstOption = None,
    last: LastOption = None,
    wait_s: Annotated[
        int, typer.Option(min=0, help="seconds to wait for the outcome here (0: don't)")
    ] = TRANSFER_WAIT_DEFAULT_S,
) -> None:
    """Transfer units to another Party's registry; exits 1 if the transfer is refused."""
    body = {
        "from_account_id": from_account,
        "to_party": to_party.upper(),
        "to_account_id": to_account,
        "authorisation_id": authorisation,
        "purpose": purpose.upper(),
        **_selection(quantity, approach, vintage, first, last),
    }
    view = _client(ctx).post(f"/transfers?wait_s={wait_s}", body)
    _print_transfer(view)
    if view["status"] == "ABORTED":
        _fail(f"the transfer was refused: {', '.join(view['reasons'])}", EXIT_REFUSED)


@transfers_app.command("show")
def transfers_show(ctx: typer.Context, transfer_id: str) -> None:
    """One transfer as this node records it, with the reason codes of a refusal."""
    _print_transfer(_client(ctx).get(f"/transfers/{transfer_id}"))


@transfers_app.command("list")
def transfers_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="PENDING, COMMITTED or ABORTED")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """The latest transfers at this node."""
    params = {"status": status.upper() if status else None, "limit": limit}
    items = _client(ctx).get("/transfers", params)["items"]
    _print_rows("transfers", items, _TRANSFER_COLUMNS)


@app.command()
def use(
    ctx: typer.Context,
    account: Annotated[str, typer.Option()],
    purpose: Annotated[str, typer.Option(help="NDC or OIMP")],
    year: Annotated[int | None, typer.Option(help="year of use (NDC)")] = None,
    quantity: QuantityOption = None,
    approach: ApproachOption = None,
    vintage: VintageOption = None,
    first: FirstOption = None,
    last: LastOption = None,
) -> None:
    """Use units towards the NDC (with the year of use) or for OIMP."""
    body: dict[str, Any] = {
        "account_id": account,
        "purpose": purpose.upper(),
        **_selection(quantity, approach, vintage, first, last),
    }
    if year is not None:
        body["year_of_use"] = year
    _print_movement("used", _client(ctx).post("/uses", body))


@app.command()
def cancel(
    ctx: typer.Context,
    account: Annotated[str, typer.Option()],
    kind: Annotated[str, typer.Option(help="VOLUNTARY or OMGE")] = "VOLUNTARY",
    quantity: QuantityOption = None,
    approach: ApproachOption = None,
    vintage: VintageOption = None,
    first: FirstOption = None,
    last: LastOption = None,
) -> None:
    """Cancel units, voluntarily or for overall mitigation (OMGE)."""
    body = {
        "account_id": account,
        "kind": kind.upper(),
        **_selection(quantity, approach, vintage, first, last),
    }
    _print_movement("cancelled", _client(ctx).post("/cancellations", body))


@app.command()
def holdings(
    ctx: typer.Context,
    account: Annotated[
        str | None, typer.Argument(help="an account; omit it for the public totals")
    ] = None,
    approach: ApproachOption = None,
    vintage: VintageOption = None,
) -> None:
    """An account's blocks, or the registry's totals per approach and vintage."""
    params = {"cooperative_approach_id": approach, "vintage": vintage}
    if account is None:
        rows = _client(ctx).get("/holdings/totals", params)
        columns = ("cooperative_approach_id", "vintage", "metric", "held", "retired", "cancelled")
        _print_rows("holdings totals", rows, columns)
        return
    result = _client(ctx).get(f"/accounts/{account}/holdings", params)
    _print_rows(f"{account}: {result['total_quantity']} units", result["blocks"], _BLOCK_COLUMNS)


@app.command()
def reconcile(ctx: typer.Context) -> None:
    """Reconciliation: every Party's snapshot compared here, and the findings (open first)."""
    result = _client(ctx).get("/reconciliation")
    out.print(
        f"{result['party']}: {result['open_findings']} open finding(s), "
        f"snapshots every {result['period_s']} s"
    )
    _print_rows(
        "snapshots compared",
        result["parties"],
        ("party", "taken_at", "compared_at", "differences"),
    )
    _print_rows(
        "findings",
        result["findings"],
        (
            "kind",
            "snapshot_party",
            "parties",
            "cooperative_approach_id",
            "originating_registry_id",
            "first_serial",
            "last_serial",
            "transfer_ids",
            "stated",
            "expected",
            "open",
            "detail",
        ),
    )


@app.command("ca-ledger")
def ca_ledger(
    ctx: typer.Context,
    year: Annotated[int | None, typer.Option()] = None,
    metric: Annotated[str | None, typer.Option()] = None,
) -> None:
    """This Party's corresponding adjustments, per year and metric."""
    result = _client(ctx).get("/ca-ledger", {"year": year, "metric": metric})
    _print_rows(f"{result['party']}: balances", result["balances"], ("year", "metric", "quantity"))
    columns = ("year", "metric", "quantity", "cause", "first_identifier", "last_identifier")
    _print_rows("entries", result["entries"], columns)


ndc_app = typer.Typer(help="Set and show this Party's NDC: type, period, CA method, metrics.")
app.add_typer(ndc_app, name="ndc")


@ndc_app.command("set")
def ndc_set(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="a JSON body as PUT /v1/ndc takes it")],
) -> None:
    """Record a new version of the NDC configuration (the README shows the fields)."""
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        _fail(f"{file}: {error}", EXIT_BAD_SETTINGS)
    if not isinstance(body, dict):
        _fail(f"{file}: not a JSON object", EXIT_BAD_SETTINGS)
    _print_ndc(_client(ctx).put("/ndc", body))


@ndc_app.command("show")
def ndc_show(ctx: typer.Context) -> None:
    """The current NDC configuration."""
    _print_ndc(_client(ctx).get("/ndc"))


def _print_ndc(record: Mapping[str, Any]) -> None:
    shown = {key: value for key, value in record.items() if not isinstance(value, list)}
    _print_record(f"NDC v{record['version']}", {**shown, "metrics": record["metrics"]})


@app.command("ca-summary")
def ca_summary(
    ctx: typer.Context,
    year: Annotated[int | None, typer.Option()] = None,
    metric: Annotated[str | None, typer.Option()] = None,
) -> None:
    """The corresponding adjustments per year and metric, by the NDC's method."""
    result = _client(ctx).get("/ca-ledger/summary", {"year": year, "metric": metric})
    ndc = result["ndc"]
    columns = (
        "year",
        "first_transferred",
        "used",
        "annual_adjustment",
        "cumulative_adjustment",
        "applied_adjustment",
        "indicative",
        "trajectory_level",
        "reported_emissions",
        "adjusted_emissions_balance",
    )
    for found in result["metrics"]:
        title = (
            f"{result['party']} {found['metric']} ({ndc['ndc_type']}, {ndc['method']}, "
            f"{ndc['period_start']}-{ndc['period_end']}): period total "
            f"{found['period_total']}, outside the period {found['outside_period']}"
        )
        _print_rows(title, found["years"], columns)


@app.command()
def audit(
    ctx: typer.Context,
    first: Annotated[str, typer.Argument(help="a unit's unique identifier, or a block's first")],
    last: Annotated[str | None, typer.Argument(help="the block's last identifier")] = None,
) -> None:
    """The audit trail of one serial or one block."""
    rows = _client(ctx).get("/audit", {"first_identifier": first, "last_identifier": last})
    columns = ("occurred_at", "action", "first_identifier", "last_identifier", "quantity")
    _print_rows("audit trail", rows, (*columns, "from_account_id", "to_account_id"))


# ---------------------------------------------------------------------------
# AEF reports: export over HTTP; check and consistency on local files


aef_app = typer.Typer(help="Export, check and cross-check Agreed Electronic Format reports.")
app.add_typer(aef_app, name="aef")


@aef_app.command("export")
def aef_export(
    ctx: typer.Context,
    year: Annotated[int, typer.Option(help="the reported year")],
    output: Annotated[Path, typer.Option("--output", "-o", help="file to write")],
    report_format: Annotated[
        ReportFormat, typer.Option("--format", help="json, csv (a zip of five files) or xlsx")
    ] = ReportFormat.JSON,
    submission_version: Annotated[int, typer.Option(min=1)] = SUBMISSION_VERSION_DEFAULT,
) -> None:
    """Download this registry's AEF for one year (its NDC fields come from `ndc set`)."""
    params = {"format": report_format.value, "submission_version": submission_version}
    content = _client(ctx).download(f"/reports/aef/{year}", params)
    output.write_bytes(content)
    out.print(f"wrote {output} ({len(content)} bytes)", highlight=False)


def _load_aef_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        _fail(f"{path}: {error}", EXIT_BAD_SETTINGS)


@aef_app.command("check")
def aef_check(file: Annotated[Path, typer.Argument(help="an AEF JSON export")]) -> None:
    """Check one AEF JSON file: identifiers, required fields, quantities, dates."""
    problems = check_aef(_load_aef_json(file))
    for problem in problems:
        out.print(str(problem), highlight=False)
    if problems:
        _fail(f"{file}: {len(problems)} problem(s)", EXIT_REFUSED)
    out.print(f"{file}: no problems", highlight=False)


@aef_app.command("consistency")
def aef_consistency(
    files: Annotated[list[Path], typer.Argument(help="two or more Parties' AEF JSON exports")],
) -> None:
    """List every transfer whose sender and receiver rows disagree between the Parties."""
    if len(files) < CONSISTENCY_FILES_MIN:
        _fail(f"give at least {CONSISTENCY_FILES_MIN} AEF files", EXIT_BAD_SETTINGS)
    documents = [_load_aef_json(path) for path in files]
    unreadable = [
        f"{path}: {problem}"
        for path, document in zip(files, documents, strict=True)
        for problem in check_aef(document)[:1]
        if problem.table in ("document", "submission")
    ]
    if unreadable:
        _fail("; ".join(unreadable), EXIT_BAD_SETTINGS)
    disagreements = find_disagreements(documents)
    for disagreement in disagreements:
        out.print(str(disagreement), highlight=False)
    if disagreements:
        _fail(f"{len(disagreements)} disagreement(s)", EXIT_REFUSED)
    out.print(f"{len(files)} reports agree", highlight=False)


def main() -> None:
    """Console script ``registry-node``."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
