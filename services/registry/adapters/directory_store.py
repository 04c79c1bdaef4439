"""The last federation directory version a node adopted, as a file in its data directory.

Written to a temporary file in the same directory and renamed over the old one,
so a crash leaves either the old version or the new one, never half of either.
A stored file that no longer parses is logged and ignored: the directory topic,
read from its start at every start, has the version again.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from a6wire.directory import DirectoryRefusedError, SignedDirectory
from registry.application.ports import StorageUnavailableError

_log = structlog.get_logger(__name__)

DIRECTORY_STATE_FILE_NAME = "federation-directory.json"
# The directory is public: members' public keys and topics, nothing secret.
DIRECTORY_STATE_FILE_MODE = 0o644


class FileDirectoryStore:
    """``registry.application.federation.DirectoryStore`` over one file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> SignedDirectory | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StorageUnavailableError(
                f"the stored federation directory {self.path} cannot be read: {error}"
            ) from error
        try:
            return SignedDirectory.from_json(data)
        except DirectoryRefusedError as refused:
            _log.warning(
                "stored federation directory ignored", path=str(self.path), detail=refused.detail
            )
            return None

    def save(self, signed: SignedDirectory) -> None:
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        try:
            descriptor = os.open(
                temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, DIRECTORY_STATE_FILE_MODE
            )
            with os.fdopen(descriptor, "wb") as file:
                file.write(signed.to_json())
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except OSError as error:
            raise StorageUnavailableError(
                f"the federation directory cannot be stored at {self.path}: {error}"
            ) from error
