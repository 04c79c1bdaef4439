"""This registry's identity and its transfer freeze (check 10)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from registry.application import handlers
from registry.application.commands import SetTransferFreeze
from registry.domain.registry_node import RegistryNode
from registry.entrypoints.api.auth import Operator, Reader
from registry.entrypoints.api.dependencies import NodeDep, execute
from registry.entrypoints.api.schemas import Reason, RequestModel

router = APIRouter(prefix="/registry", tags=["registry"])


class RegistryOut(BaseModel):
    party: str
    registry_id: str
    transfers_frozen: bool
    freeze_reason: str

    @classmethod
    def of(cls, registry: RegistryNode) -> RegistryOut:
        return cls(
            party=registry.party,
            registry_id=registry.registry_id,
            transfers_frozen=registry.transfers_frozen,
            freeze_reason=registry.freeze_reason,
        )


class FreezeIn(RequestModel):
    reason: Reason


@router.get("", response_model=RegistryOut)
def get_registry(node: NodeDep, _: Reader) -> RegistryOut:
    return RegistryOut.of(execute(node, handlers.get_registry_node))


@router.post("/freeze", response_model=RegistryOut)
def freeze(body: FreezeIn, node: NodeDep, _: Operator) -> RegistryOut:
    command = SetTransferFreeze(frozen=True, reason=body.reason)
    return RegistryOut.of(execute(node, handlers.set_transfer_freeze, command))


@router.post("/unfreeze", response_model=RegistryOut)
def unfreeze(node: NodeDep, _: Operator) -> RegistryOut:
    command = SetTransferFreeze(frozen=False)
    return RegistryOut.of(execute(node, handlers.set_transfer_freeze, command))
