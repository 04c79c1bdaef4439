"""``registry-node federation ...``: the directory's lifecycle, for the authority and for members.

The authority (a secretariat, or each of k co-signers) runs:

- ``authority-key``: create its Ed25519 signing key; the public half is what every
  node configures in ``REGISTRY_FEDERATION_AUTHORITY_KEYS``;
- ``directory-next``: the next version of a directory file, with members added,
  suspended, reinstated or re-keyed (an unsigned draft);
- ``directory-sign``: sign a draft (or co-sign a signed version, for k-of-n);
- ``directory-publish``: append a signed version to the directory topic, where
  every node reads it and adopts it live.

A member's operator runs ``next-key`` to create the key it will sign with after a
rotation (``<key>.next``, next to the node's key), and sends its public half to the
authority; ``directory-verify`` checks a version's signatures before use.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from a6wire.directory import (
    DirectoryAuthority,
    FederationDirectory,
    FederationMember,
    SignedDirectory,
    amend,
    check_signed,
    sign_directory,
)
from a6wire.keys import (
    generate_private_key,
    load_private_key_pem,
    next_key_path,
    public_key_base64,
    read_directory_file,
    save_private_key_pem,
)
from a6wire.topics import DIRECTORY_TOPIC, inbox_topic
from registry.adapters.messaging import KafkaTls, MessagingError, publish_directory
from registry.adapters.messaging.config import (
    MIN_INSYNC_REPLICAS_LOCAL,
    MIN_INSYNC_REPLICAS_PRODUCTION,
    REPLICATION_FACTOR_LOCAL,
    REPLICATION_FACTOR_PRODUCTION,
)
from registry.settings import ENV_PREFIX, SettingsError, load_settings

EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3

federation_app = typer.Typer(
    help="The federation directory: the authority's versions, and a member's key rotation."
)
out = Console()
err = Console(stderr=True)


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _read(path: Path) -> FederationDirectory | SignedDirectory:
    try:
        return read_directory_file(path)
    except OSError as error:
        raise _fail(f"{path} cannot be read: {error.strerror or error}", EXIT_BAD_INPUT) from None
    except ValueError as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise _fail(f"{path} is not a directory file: {first}", EXIT_BAD_INPUT) from None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _new_key(path: Path) -> str:
    try:
        key = generate_private_key()
        save_private_key_pem(key, path)
    except FileExistsError:
        raise _fail(f"{path} exists; a key is never overwritten", EXIT_REFUSED) from None
    except OSError as error:
        raise _fail(
            f"{path} cannot be written: {error.strerror or error}", EXIT_BAD_INPUT
        ) from None
    return public_key_base64(key)


@federation_app.command("authority-key")
def authority_key(
    out_path: Annotated[Path, typer.Option("--out", help="where the new key goes (mode 0600)")],
) -> None:
    """Create an authority signing key; print its public half for the members' settings."""
    public = _new_key(out_path)
    out.print(f"authority key written to {out_path}; members set", highlight=False)
    out.print(f"{ENV_PREFIX}FEDERATION_AUTHORITY_KEYS={public}", highlight=False)
    print(f"public_key={public}")


def _parse_member(text: str) -> FederationMember:
    try:
        party, registry_id, key = text.split(":", 2)
        return FederationMember(
            party=party,
            registry_id=registry_id,
            public_key_base64=key,
            inbox_topic=inbox_topic(party),
        )
    except ValueError as error:
        first = str(error).splitlines()[0]
        raise _fail(
            f"--add {text!r}: expected PARTY:REGISTRY_ID:PUBLIC_KEY ({first})", EXIT_BAD_INPUT
        ) from None


def _parse_rotation(text: str, valid_until: datetime | None) -> tuple[str, str, datetime]:
    party, _, key = text.partition(":")
    if not key:
        raise _fail(f"--rotate {text!r}: expected PARTY:NEW_PUBLIC_KEY", EXIT_BAD_INPUT)
    if valid_until is None:
        raise _fail(
            "--rotate needs --old-key-valid-until (ISO 8601, with an offset)", EXIT_BAD_INPUT
        )
    return party, key, valid_until


def _aware(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option} {value!r} is not an ISO 8601 datetime", EXIT_BAD_INPUT) from None
    if parsed.tzinfo is None:
        raise _fail(f"{option} {value!r} needs a UTC offset, e.g. Z", EXIT_BAD_INPUT)
    return parsed.astimezone(UTC)


@federation_app.command("directory-next")
def directory_next(
    current: Annotated[Path, typer.Option(help="the version in force (genesis or signed)")],
    out_path: Annotated[Path, typer.Option("--out", help="the unsigned draft to write")],
    add: Annotated[
        list[str] | None, typer.Option(help="PARTY:REGISTRY_ID:PUBLIC_KEY of a joining member")
    ] = None,
    suspend: Annotated[list[str] | None, typer.Option(help="a Party to suspend")] = None,
    reinstate: Annotated[list[str] | None, typer.Option(help="a Party to reinstate")] = None,
    rotate: Annotated[
        list[str] | None, typer.Option(help="PARTY:NEW_PUBLIC_KEY of a member's new key")
    ] = None,
    old_key_valid_until: Annotated[
        str | None, typer.Option(help="until when a rotated member's old key is accepted")
    ] = None,
    retire_previous_keys: Annotated[
        list[str] | None,
        typer.Option(help="a Party whose previous keys stop counting now (compromised)"),
    ] = None,
) -> None:
    """Write the next directory version (version + 1, issued now) as a draft to sign."""
    read = _read(current)
    directory = read.directory if isinstance(read, SignedDirectory) else read
    valid_until = _aware(old_key_valid_until, "--old-key-valid-until")
    try:
        draft = amend(
            directory,
            issued_at=datetime.now(UTC),
            add=tuple(_parse_member(text) for text in add or ()),
            suspend=tuple(suspend or ()),
            reinstate=tuple(reinstate or ()),
            rotate=tuple(_parse_rotation(text, valid_until) for text in rotate or ()),
            retire=tuple(retire_previous_keys or ()),
        )
    except ValueError as error:
        first = str(error).splitlines()[0]
        raise _fail(f"the next version cannot be made: {first}", EXIT_REFUSED) from None
    _write(out_path, draft.model_dump_json(indent=2) + "\n")
    out.print(f"draft of version {draft.version} written to {out_path}", highlight=False)


@federation_app.command("directory-sign")
def directory_sign(
    draft: Annotated[Path, typer.Option(help="a draft, or a signed version to co-sign")],
    key: Annotated[Path, typer.Option(help="this authority's private key (PEM)")],
    out_path: Annotated[Path, typer.Option("--out", help="the signed version to write")],
) -> None:
    """Sign a directory version with one authority key (k-of-n: each signer in turn)."""
    read = _read(draft)
    try:
        private_key = load_private_key_pem(key)
    except (OSError, ValueError) as error:
        raise _fail(
            f"{key} is not a readable Ed25519 private key: {error}", EXIT_BAD_INPUT
        ) from None
    if isinstance(read, SignedDirectory):
        signed = sign_directory(read.directory, private_key, read.signatures)
    else:
        if read.version < 1 or read.issued_at is None:
            raise _fail(
                "a version to sign has a version above 0 and an issued_at: "
                "make it with `registry-node federation directory-next`",
                EXIT_BAD_INPUT,
            )
        signed = sign_directory(read, private_key)
    _write(out_path, signed.to_json().decode("utf-8"))
    out.print(
        f"version {signed.directory.version} signed ({len(signed.signatures)} signature(s)) "
        f"to {out_path}",
        highlight=False,
    )


@federation_app.command("directory-verify")
def directory_verify(
    file: Annotated[Path, typer.Option(help="a signed directory version")],
    authority_keys: Annotated[
        str, typer.Option(help="the authority's public keys, comma-separated")
    ],
    threshold: Annotated[int, typer.Option(help="how many must have signed")] = 1,
) -> None:
    """Check a version's signatures as a node would, before publishing or installing it."""
    read = _read(file)
    if not isinstance(read, SignedDirectory):
        raise _fail(f"{file} is an unsigned directory (a genesis or a draft)", EXIT_REFUSED)
    try:
        authority = DirectoryAuthority(
            public_keys=frozenset(k.strip() for k in authority_keys.split(",") if k.strip()),
            threshold=threshold,
        )
        directory = check_signed(read, authority)
    except ValueError as error:
        first = str(error).splitlines()[0]
        raise _fail(f"{file}: {first}", EXIT_REFUSED) from None
    members = ", ".join(
        member.party + ("" if member.active else " (SUSPENDED)") for member in directory.members
    )
    out.print(
        f"version {directory.version}, issued {directory.issued_at}: signed by the authority; "
        f"members {members}",
        highlight=False,
    )


@federation_app.command("directory-publish")
def directory_publish(
    file: Annotated[Path, typer.Option(help="a signed directory version")],
    bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers, host:port[,...]")],
    topic: Annotated[str, typer.Option(help="the directory topic")] = DIRECTORY_TOPIC,
    ssl_ca: Annotated[Path | None, typer.Option(help="CA certificate (mTLS)")] = None,
    ssl_cert: Annotated[Path | None, typer.Option(help="the admin's certificate")] = None,
    ssl_key: Annotated[Path | None, typer.Option(help="the admin's private key")] = None,
    replicas: Annotated[int, typer.Option(help="replication of the topic: 1 or 3")] = 1,
) -> None:
    """Append a signed version to the directory topic (as the federation admin)."""
    read = _read(file)
    if not isinstance(read, SignedDirectory) or not read.signatures:
        raise _fail(f"{file} is not signed: run `directory-sign` first", EXIT_REFUSED)
    given = [path for path in (ssl_ca, ssl_cert, ssl_key) if path is not None]
    if given and len(given) != 3:
        raise _fail("mTLS needs --ssl-ca, --ssl-cert and --ssl-key together", EXIT_BAD_INPUT)
    tls = (
        KafkaTls(ca_path=ssl_ca, cert_path=ssl_cert, key_path=ssl_key)
        if ssl_ca is not None and ssl_cert is not None and ssl_key is not None
        else None
    )
    production = replicas >= REPLICATION_FACTOR_PRODUCTION
    try:
        offset = asyncio.run(
            publish_directory(
                bootstrap,
                read.to_json(),
                topic=topic,
                tls=tls,
                replication_factor=(
                    REPLICATION_FACTOR_PRODUCTION if production else REPLICATION_FACTOR_LOCAL
                ),
                min_insync_replicas=(
                    MIN_INSYNC_REPLICAS_PRODUCTION if production else MIN_INSYNC_REPLICAS_LOCAL
                ),
            )
        )
    except MessagingError as error:
        raise _fail(str(error), EXIT_UNREACHABLE) from None
    out.print(
        f"version {read.directory.version} published to {topic} at offset {offset}",
        highlight=False,
    )


@federation_app.command("next-key")
def next_key(
    env_file: Annotated[
        Path | None,
        typer.Option("--env-file", envvar=f"{ENV_PREFIX}ENV_FILE", help="the node's settings"),
    ] = None,
) -> None:
    """Create the node's next signing key (``<key>.next``) and print its public half.

    Send the public key to the authority. Once a directory version names it as this
    Party's key, the node signs with it at once (no restart); the old key stays
    accepted by peers until the deadline that version gives it.
    """
    try:
        settings = load_settings(env_file)
    except SettingsError as error:
        raise _fail("; ".join(error.problems), EXIT_BAD_INPUT) from None
    path = next_key_path(settings.resolved_key_path)
    public = _new_key(path)
    out.print(f"next key written to {path}; send the authority this public key", highlight=False)
    print(f"public_key={public}")
