"""Fixtures borrowed by name: the API node (tests/integration/api) and the migrated engine
(tests/integration/persistence), both over ``database_url``."""

from tests.integration.api.conftest import (  # noqa: F401 - fixtures, used by name
    anonymous,
    auditor,
    issued,
    ledger,
    node,
    operator,
    settings,
)
from tests.integration.persistence.conftest import engine  # noqa: F401 - fixture
