"""Accounts: open, list, inspect, suspend, reopen, close; and an account's holdings."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel

from registry.application import handlers
from registry.application.commands import ChangeAccountStatus, OpenAccount
from registry.domain.accounts import AccountKind, AccountStatus
from registry.domain.blocks import BlockStatus
from registry.entrypoints.api.auth import Operator, Reader
from registry.entrypoints.api.dependencies import NodeDep, execute
from registry.entrypoints.api.schemas import (
    AccountId,
    AccountOut,
    BlockOut,
    CooperativeApproachId,
    EntityId,
    Name,
    RequestModel,
    VintageParam,
)

router = APIRouter(prefix="/accounts", tags=["accounts"])


class OpenAccountIn(RequestModel):
    account_id: AccountId
    kind: AccountKind = AccountKind.HOLDING
    holder_entity_id: EntityId | None = None
    name: Name = ""


class HoldingsOut(BaseModel):
    account_id: str
    total_quantity: int
    blocks: list[BlockOut]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AccountOut)
def open_account(body: OpenAccountIn, node: NodeDep, _: Operator) -> AccountOut:
    command = OpenAccount(body.account_id, body.kind, body.holder_entity_id, body.name)
    return AccountOut.of(execute(node, handlers.open_account, command))


@router.get("", response_model=list[AccountOut])
def list_accounts(node: NodeDep, _: Reader) -> list[AccountOut]:
    return [AccountOut.of(account) for account in execute(node, handlers.list_accounts)]


@router.get("/{account_id}", response_model=AccountOut)
def get_account(account_id: AccountId, node: NodeDep, _: Reader) -> AccountOut:
    return AccountOut.of(execute(node, handlers.get_account, account_id))


def _change_status(node: NodeDep, account_id: AccountId, new_status: AccountStatus) -> AccountOut:
    command = ChangeAccountStatus(account_id, new_status)
    return AccountOut.of(execute(node, handlers.change_account_status, command))


@router.post("/{account_id}/suspend", response_model=AccountOut)
def suspend_account(account_id: AccountId, node: NodeDep, _: Operator) -> AccountOut:
    return _change_status(node, account_id, AccountStatus.SUSPENDED)


@router.post("/{account_id}/reopen", response_model=AccountOut)
def reopen_account(account_id: AccountId, node: NodeDep, _: Operator) -> AccountOut:
    return _change_status(node, account_id, AccountStatus.OPEN)


@router.post("/{account_id}/close", response_model=AccountOut)
def close_account(account_id: AccountId, node: NodeDep, _: Operator) -> AccountOut:
    return _change_status(node, account_id, AccountStatus.CLOSED)


@router.get("/{account_id}/holdings", response_model=HoldingsOut)
def account_holdings(
    account_id: AccountId,
    node: NodeDep,
    _: Reader,
    cooperative_approach_id: CooperativeApproachId | None = None,
    vintage: VintageParam | None = None,
) -> HoldingsOut:
    blocks = [
        block
        for block in execute(node, handlers.account_blocks, account_id)
        if block.status is BlockStatus.HELD
        and cooperative_approach_id in (None, block.attributes.cooperative_approach_id)
        and vintage in (None, block.attributes.vintage)
    ]
    return HoldingsOut(
        account_id=account_id,
        total_quantity=sum(block.quantity for block in blocks),
        blocks=[BlockOut.of(block) for block in blocks],
    )
