"""Handlers for the registry's reference data: identity, freeze, accounts, approaches, LoAs."""

from __future__ import annotations

from dataclasses import replace

from registry.application._common import load_node
from registry.application.commands import (
    ChangeAccountStatus,
    InitialiseRegistry,
    OpenAccount,
    RecordAuthorisation,
    RegisterCooperativeApproach,
    RevokeAuthorisation,
    SetNdcConfiguration,
    SetTransferFreeze,
)
from registry.application.ports import Clock, UnitOfWork
from registry.domain.accounts import (
    RETIREMENT_KINDS,
    Account,
    AccountKind,
    AccountStatus,
    check_account_text,
    retirement_account_id,
)
from registry.domain.approaches import CooperativeApproach
from registry.domain.authorisations import Authorisation, check_new_version
from registry.domain.blocks import BlockStatus
from registry.domain.errors import DomainError, ReasonCode, refuse_if_any
from registry.domain.ndc import NdcRecord, check_ndc
from registry.domain.registry_node import RegistryNode


def initialise_registry(uow: UnitOfWork, clock: Clock, command: InitialiseRegistry) -> RegistryNode:
    node = RegistryNode(party=command.party, registry_id=command.registry_id)
    with uow:
        if uow.registry_node.get() is not None:
            raise DomainError(
                ReasonCode.REGISTRY_ALREADY_INITIALISED, "this registry is already initialised"
            )
        uow.registry_node.add(node)
        # Retirement accounts are opened with the registry so every use and
        # cancellation has a destination that always exists.
        for kind in sorted(RETIREMENT_KINDS):
            uow.accounts.add(
                Account(
                    retirement_account_id(node.registry_id, kind),
                    kind,
                    name=f"{node.party} {kind.value.replace('_', ' ').lower()}",
                )
            )
        uow.commit()
    return node


def set_transfer_freeze(uow: UnitOfWork, clock: Clock, command: SetTransferFreeze) -> RegistryNode:
    with uow:
        node = replace(
            load_node(uow), transfers_frozen=command.frozen, freeze_reason=command.reason
        )
        uow.registry_node.update(node)
        uow.commit()
    return node


def open_account(uow: UnitOfWork, clock: Clock, command: OpenAccount) -> Account:
    account = Account(
        command.account_id,
        command.kind,
        AccountStatus.OPEN,
        command.holder_entity_id,
        command.name,
    )
    refuse_if_any(check_account_text(account), "the account's name or holder id is malformed")
    with uow:
        load_node(uow)
        if uow.accounts.get(account.account_id) is not None:
            raise DomainError(ReasonCode.ACCOUNT_EXISTS, f"account {account.account_id} exists")
        uow.accounts.add(account)
        uow.commit()
    return account


# Units in these states still sit in the account, so it cannot close.
_OCCUPYING_STATUSES = (BlockStatus.HELD, BlockStatus.RESERVED, BlockStatus.INCOMING)


def change_account_status(uow: UnitOfWork, clock: Clock, command: ChangeAccountStatus) -> Account:
    with uow:
        account = uow.accounts.lock(command.account_id)
        if account is None:
            raise DomainError(ReasonCode.UNKNOWN_ACCOUNT, f"no account {command.account_id}")
        if command.status is AccountStatus.CLOSED and (
            account.kind is not AccountKind.HOLDING
            or any(
                uow.blocks.quantity_in_account(account.account_id, status)
                for status in _OCCUPYING_STATUSES
            )
        ):
            raise DomainError(
                ReasonCode.ACCOUNT_NOT_EMPTY,
                f"account {account.account_id} holds units or is a retirement account",
            )
        changed = account.with_status(command.status)
        uow.accounts.update(changed)
        uow.commit()
    return changed


def register_cooperative_approach(
    uow: UnitOfWork, clock: Clock, command: RegisterCooperativeApproach
) -> CooperativeApproach:
    approach = command.approach
    with uow:
        node = load_node(uow)
        if node.party not in approach.participating_parties:
            raise DomainError(
                ReasonCode.PARTY_NOT_IN_COOPERATIVE_APPROACH,
                f"{node.party} does not participate in {approach.cooperative_approach_id}",
            )
        if uow.approaches.get(approach.cooperative_approach_id) is not None:
            raise DomainError(
                ReasonCode.COOPERATIVE_APPROACH_EXISTS,
                f"{approach.cooperative_approach_id} is already registered",
            )
        uow.approaches.add(approach)
        uow.commit()
    return approach


def record_authorisation(
    uow: UnitOfWork, clock: Clock, command: RecordAuthorisation
) -> Authorisation:
    authorisation = command.authorisation
    with uow:
        node = load_node(uow)
        if uow.approaches.get(authorisation.cooperative_approach_id) is None:
            raise DomainError(
                ReasonCode.UNKNOWN_COOPERATIVE_APPROACH,
                f"{authorisation.cooperative_approach_id} is not registered here",
            )
        current = uow.authorisations.current(node.party, authorisation.authorisation_id)
        refuse_if_any(
            check_new_version(current, authorisation, own_party=node.party),
            f"authorisation {authorisation.authorisation_id} v{authorisation.version} "
            "does not follow the current version",
        )
        uow.authorisations.add(authorisation)
        uow.commit()
    return authorisation


def revoke_authorisation(
    uow: UnitOfWork, clock: Clock, command: RevokeAuthorisation
) -> Authorisation:
    with uow:
        node = load_node(uow)
        current = uow.authorisations.current(node.party, command.authorisation_id)
        if current is None:
            raise DomainError(
                ReasonCode.NO_AUTHORISATION, f"no authorisation {command.authorisation_id}"
            )
        if current.revoked:
            raise DomainError(
                ReasonCode.AUTHORISATION_REVOKED, f"{command.authorisation_id} is already revoked"
            )
        revoked = replace(
            current, version=current.version + 1, revoked=True, authorised_on=clock.now().date()
        )
        uow.authorisations.add(revoked)
        uow.commit()
    return revoked


def set_ndc_configuration(uow: UnitOfWork, clock: Clock, command: SetNdcConfiguration) -> NdcRecord:
    """Record the configuration as the next version, if registry.domain.ndc accepts it."""
    refuse_if_any(check_ndc(command.configuration), "this NDC configuration cannot be used")
    with uow:
        # The registry row's lock serialises writers, so two versions never share a number.
        node = uow.registry_node.lock()
        if node is None:
            raise DomainError(ReasonCode.REGISTRY_NOT_INITIALISED, "initialise the registry first")
        current = uow.ndc.current(node.party)
        record = NdcRecord(
            party=node.party,
            version=1 if current is None else current.version + 1,
            recorded_at=clock.now(),
            configuration=command.configuration,
        )
        uow.ndc.add(record)
        uow.commit()
    return record
