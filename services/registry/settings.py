"""Validated settings of one registry node.

Every Party runs the same code; what differs is configuration: which Party,
which registry, which database, which broker, which API tokens. Settings come
from ``REGISTRY_*`` environment variables and an optional ``.env``-style file,
are validated once at start, and are then passed (never imported as a global)
to the composition root.

Secrets are checked as well as shapes: outside local mode a node refuses to
start with a placeholder token or one too short to resist guessing, because a
registry API guarded by ``changeme`` is a registry anyone can drain.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from a6wire.identifiers import PARTY_PATTERN, REGISTRY_ID_PATTERN, is_party_code, is_registry_id
from a6wire.signing import public_key_from_base64

ENV_PREFIX = "REGISTRY_"

# A bearer token shorter than this is refused outside local mode: 16 characters
# of URL-safe base64 are 96 bits, beyond online guessing for any realistic rate.
TOKEN_LENGTH_MIN_CHARS = 16

# Tokens that ship in examples and tutorials; anyone would try them first.
PLACEHOLDER_SECRETS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "password",
        "token",
        "admin",
        "operator",
        "auditor",
        "test",
        "default",
        "example",
    }
)

DEFAULT_DATA_DIR = Path("registry-data")
DEFAULT_KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:9092"
DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8000
DATABASE_FILE_NAME = "registry.sqlite3"
KEY_FILE_NAME = "node_ed25519.pem"
PORT_MIN = 1
PORT_MAX = 65535
# Health turns degraded once the oldest unsent outbox row has waited this long. A
# working relay publishes a row within about a second (one poll interval at most);
# a minute means the broker is unreachable or the relay is stuck, while transfer
# deadlines (hours) still leave operators time to act.
OUTBOX_STALL_DEGRADED_AFTER_S_DEFAULT = 60.0
# How often a node publishes its holdings snapshot and compares everyone's
# (reconciliation). Five minutes: a tampered ledger is found within minutes, while
# a snapshot (at most a few hundred KiB) per Party per period costs the broker little.
RECONCILIATION_PERIOD_S_DEFAULT = 300.0
RECONCILIATION_PERIOD_S_MIN = 0.5


class SettingsError(Exception):
    """Settings that cannot start a node; ``problems`` has one sentence per value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid registry settings:\n" + "\n".join(f"- {p}" for p in problems))


def _split_tokens(value: Any) -> Any:
    """Accept a JSON list, a comma-separated string (the natural shape of an env var) or a list."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [token.strip() for token in value.split(",") if token.strip()]
    return value


TokenList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """The configuration of one registry node; see the module docstring."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    party: str = Field(description="ISO 3166 alpha-3 code of the Party running this node")
    registry_id: str = Field(description="the Party code plus two digits, e.g. THA01")
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means a SQLite file in data_dir"
    )
    kafka_bootstrap_servers: str = DEFAULT_KAFKA_BOOTSTRAP_SERVERS
    # PLAINTEXT for a developer's broker; SSL (mutual TLS, the node's own certificate
    # from the federation CA) for a federation's brokers. See the README.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL"] = "PLAINTEXT"
    kafka_ssl_ca_path: Path | None = Field(
        default=None, description="PEM certificate of the federation CA (SSL only)"
    )
    kafka_ssl_cert_path: Path | None = Field(
        default=None, description="PEM certificate of this node's Kafka principal (SSL only)"
    )
    kafka_ssl_key_path: Path | None = Field(
        default=None, description="PEM private key of that certificate (SSL only)"
    )
    api_host: str = DEFAULT_API_HOST
    api_port: int = Field(default=DEFAULT_API_PORT, ge=PORT_MIN, le=PORT_MAX)
    # Declared before the tokens so that their validators can see it.
    local_mode: bool = Field(
        default=False, description="a developer's node: placeholder tokens are tolerated"
    )
    # repr=False keeps the tokens out of logs and tracebacks that print settings.
    operator_tokens: TokenList = Field(default_factory=list, repr=False)
    auditor_tokens: TokenList = Field(default_factory=list, repr=False)
    key_path: Path | None = Field(
        default=None, description="Ed25519 private key (PEM); empty means data_dir/node key"
    )
    directory_path: Path | None = Field(
        default=None, description="the federation directory file (used by the transfer bus)"
    )
    # The federation's authority (a6wire.directory): base64 Ed25519 public keys, and
    # how many of them must sign a directory version. Empty: the node keeps the
    # directory file it started with and follows no published version.
    federation_authority_keys: TokenList = Field(
        default_factory=list,
        description="public keys (base64) that sign federation directory versions",
    )
    federation_authority_threshold: int = Field(
        default=1, ge=1, description="how many authority keys must sign a directory version"
    )
    outbox_stall_degraded_after_s: float = Field(
        default=OUTBOX_STALL_DEGRADED_AFTER_S_DEFAULT,
        gt=0,
        description="health is degraded once the oldest unsent outbox row is this old",
    )

    reconciliation_period_s: float = Field(
        default=RECONCILIATION_PERIOD_S_DEFAULT,
        ge=RECONCILIATION_PERIOD_S_MIN,
        description="seconds between two holdings snapshots of this node (reconciliation)",
    )

    @field_validator("party")
    @classmethod
    def _party_is_alpha_3(cls, value: str) -> str:
        if not is_party_code(value):
            raise ValueError(
                f"{value!r} is not an ISO 3166 alpha-3 Party code "
                f"(three capital letters, {PARTY_PATTERN})"
            )
        return value

    @field_validator("registry_id")
    @classmethod
    def _registry_id_shape(cls, value: str) -> str:
        if not is_registry_id(value):
            raise ValueError(
                f"{value!r} is not a registry id (the Party code and two digits, "
                f"{REGISTRY_ID_PATTERN}, e.g. THA01)"
            )
        return value

    @field_validator("federation_authority_keys", mode="before")
    @classmethod
    def _authority_keys_from_text(cls, value: Any) -> Any:
        return _split_tokens(value)

    @field_validator(
        "kafka_ssl_ca_path", "kafka_ssl_cert_path", "kafka_ssl_key_path", mode="before"
    )
    @classmethod
    def _empty_path_is_missing(cls, value: Any) -> Any:
        # `REGISTRY_KAFKA_SSL_KEY_PATH=` in an env file means no file, not the current
        # directory (which Path("") would be): the node then says the file is missing.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("operator_tokens", "auditor_tokens", mode="before")
    @classmethod
    def _tokens_from_text(cls, value: Any) -> Any:
        return _split_tokens(value)

    @field_validator("operator_tokens", "auditor_tokens")
    @classmethod
    def _tokens_strong(cls, tokens: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("local_mode", False):
            return tokens
        problems = [
            f"token #{position} {problem}"
            for position, token in enumerate(tokens, start=1)
            if (problem := _weak_token_problem(token))
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return tokens

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems: list[str] = []
        if not self.registry_id.startswith(self.party):
            problems.append(
                f"{ENV_PREFIX}REGISTRY_ID {self.registry_id!r} must start with "
                f"the Party code {self.party!r}"
            )
        problems.extend(self._token_problems())
        problems.extend(self._kafka_tls_problems())
        problems.extend(self._authority_problems())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _token_problems(self) -> list[str]:
        problems: list[str] = []
        shared = set(self.operator_tokens) & set(self.auditor_tokens)
        if shared:
            problems.append("a token may not be both an operator token and an auditor token")
        if self.local_mode:
            return problems
        if not self.operator_tokens:
            problems.append(
                f"{ENV_PREFIX}OPERATOR_TOKENS is empty: outside local mode the node needs "
                "at least one operator token"
            )
        return problems

    def _authority_problems(self) -> list[str]:
        keys, threshold = self.federation_authority_keys, self.federation_authority_threshold
        if not keys:
            if threshold != 1:
                return [
                    f"{ENV_PREFIX}FEDERATION_AUTHORITY_THRESHOLD is set but "
                    f"{ENV_PREFIX}FEDERATION_AUTHORITY_KEYS is empty"
                ]
            return []
        problems = [
            f"{ENV_PREFIX}FEDERATION_AUTHORITY_KEYS: {key[:16]!r}... is not a base64 Ed25519 "
            "public key"
            for key in keys
            if not _is_public_key(key)
        ]
        if threshold > len(set(keys)):
            problems.append(
                f"{ENV_PREFIX}FEDERATION_AUTHORITY_THRESHOLD {threshold} is more than the "
                f"{len(set(keys))} authority key(s) given"
            )
        return problems

    def _kafka_tls_problems(self) -> list[str]:
        """One sentence per TLS file that is missing, absent or unreadable."""
        files = {
            "KAFKA_SSL_CA_PATH": self.kafka_ssl_ca_path,
            "KAFKA_SSL_CERT_PATH": self.kafka_ssl_cert_path,
            "KAFKA_SSL_KEY_PATH": self.kafka_ssl_key_path,
        }
        if self.kafka_security_protocol == "PLAINTEXT":
            given = [f"{ENV_PREFIX}{name}" for name, path in files.items() if path is not None]
            if not given:
                return []
            return [
                f"{', '.join(given)} set but {ENV_PREFIX}KAFKA_SECURITY_PROTOCOL is PLAINTEXT: "
                "set it to SSL to use them, or remove them"
            ]
        problems: list[str] = []
        for name, path in files.items():
            problem = _unreadable_file_problem(path)
            if problem is not None:
                problems.append(f"{ENV_PREFIX}{name} {problem}")
        return problems

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / DATABASE_FILE_NAME).resolve()}"

    @property
    def resolved_key_path(self) -> Path:
        return self.key_path if self.key_path is not None else self.data_dir / KEY_FILE_NAME


def _is_public_key(text: str) -> bool:
    try:
        public_key_from_base64(text)
    except ValueError:
        return False
    return True


def _weak_token_problem(token: str) -> str | None:
    if token.lower() in PLACEHOLDER_SECRETS:
        return "is a placeholder secret; generate one (e.g. `registry-node init`)"
    if len(token) < TOKEN_LENGTH_MIN_CHARS:
        return f"is shorter than {TOKEN_LENGTH_MIN_CHARS} characters"
    return None


def _unreadable_file_problem(path: Path | None) -> str | None:
    if path is None:
        return "is missing: KAFKA_SECURITY_PROTOCOL=SSL needs the CA, certificate and key files"
    if not path.exists():
        return f"{str(path)!r} does not exist"
    if not path.is_file():
        return f"{str(path)!r} is not a file"
    if not os.access(path, os.R_OK):
        return f"{str(path)!r} cannot be read by this user (check its owner and mode)"
    return None


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate settings, turning pydantic's report into one sentence per value.

    ``overrides`` win over the environment and the env file; tests and the
    CLI use them to pass values explicitly.
    """
    if env_file is not None and not env_file.is_file():
        raise SettingsError([f"settings file {str(env_file)!r} does not exist"])
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


def _describe(error: ValidationError) -> list[str]:
    problems: list[str] = []
    for detail in error.errors():
        location = [str(part) for part in detail["loc"]]
        name = f"{ENV_PREFIX}{location[0].upper()}" if location else "settings"
        if detail["type"] == "missing":
            problems.append(f"{name} is missing")
            continue
        message = str(detail["msg"]).removeprefix("Value error, ")
        # Model-level checks already name their variables; field checks do not.
        problems.extend(message.split("; ") if not location else [f"{name}: {message}"])
    return problems
