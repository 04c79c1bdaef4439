"""Two in-memory ledgers that have traded with each other."""

from __future__ import annotations

import pytest

from registry.adapters.in_memory import InMemoryUnitOfWork
from tests.unit.application.support import Ledger
from tests.unit.reports.support import trade


@pytest.fixture
def traded() -> tuple[Ledger, Ledger]:
    sender = Ledger(InMemoryUnitOfWork())
    receiver = Ledger(InMemoryUnitOfWork())
    trade(sender, receiver)
    return sender, receiver
