"""Translation between the ledger's values and the wire contract's, both ways.

The domain and a6wire name a few things differently (``gwp_values`` and
``gwp``, ``authorised_on`` and ``authorisation_date``) and the wire is
stricter (a block crossing a border must name its Letter of Authorisation).
Everything that can fail raises ``MappingError`` with a reason code, so a
handler can turn it into a refusal rather than a crash.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import ValidationError

from a6wire import messages as wire
from registry.domain.authorisations import Authorisation, FirstTransferDefinition, Purpose
from registry.domain.blocks import BlockAttributes, BlockSpec
from registry.domain.errors import DomainError, ReasonCode
from registry.domain.first_transfer import FirstTransferNotice, RetirementAction


class MappingError(ValueError):
    """A value that cannot cross between the ledger and the wire."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def block_to_wire(spec: BlockSpec) -> wire.SerialBlock:
    attributes = spec.attributes
    if attributes.authorisation_id is None or attributes.authorisation_version is None:
        # Without an LoA units are not ITMOs and must not cross a border.
        raise MappingError(ReasonCode.NO_AUTHORISATION, "a block without an authorisation")
    try:
        return wire.SerialBlock(
            first_serial=spec.first_serial,
            last_serial=spec.last_serial,
            quantity=spec.quantity,
            cooperative_approach_id=attributes.cooperative_approach_id,
            originating_registry_id=attributes.originating_registry_id,
            first_transferring_party=attributes.first_transferring_party,
            vintage=attributes.vintage,
            metric=attributes.metric,
            gwp=attributes.gwp_values,
            mitigation_type=attributes.mitigation_type,
            sector=attributes.sector,
            activity_type=attributes.activity_type,
            first_transfer_done=attributes.first_transfer_done,
            authorisation_id=attributes.authorisation_id,
            authorisation_version=attributes.authorisation_version,
        )
    except ValidationError as error:
        raise MappingError(ReasonCode.MALFORMED_BLOCK, str(error)) from error


def block_from_wire(block: wire.SerialBlock) -> BlockSpec:
    return BlockSpec(
        first_serial=block.first_serial,
        last_serial=block.last_serial,
        attributes=BlockAttributes(
            cooperative_approach_id=block.cooperative_approach_id,
            originating_registry_id=block.originating_registry_id,
            first_transferring_party=block.first_transferring_party,
            vintage=block.vintage,
            metric=block.metric,
            gwp_values=block.gwp,
            mitigation_type=block.mitigation_type,
            sector=block.sector,
            activity_type=block.activity_type,
            first_transfer_done=block.first_transfer_done,
            authorisation_id=block.authorisation_id,
            authorisation_version=block.authorisation_version,
        ),
    )


def authorisation_to_wire(authorisation: Authorisation) -> wire.AuthorisationSnapshot:
    definition = authorisation.oimp_first_transfer
    try:
        return wire.AuthorisationSnapshot(
            authorisation_id=authorisation.authorisation_id,
            authorisation_date=authorisation.authorised_on,
            cooperative_approach_id=authorisation.cooperative_approach_id,
            version=authorisation.version,
            quantity_cap=authorisation.quantity_cap,
            authorised_parties=tuple(sorted(authorisation.authorised_parties)),
            authorised_entities=tuple(sorted(authorisation.authorised_entities)),
            purposes=tuple(wire.Purpose(p.value) for p in sorted(authorisation.purposes)),
            mitigation_from=authorisation.mitigation_from,
            mitigation_to=authorisation.mitigation_to,
            use_from=authorisation.use_from,
            use_to=authorisation.use_to,
            terms=authorisation.terms,
            first_transfer_definition=(
                None if definition is None else wire.FirstTransferDefinition(definition.value)
            ),
        )
    except ValidationError as error:
        raise MappingError(ReasonCode.MALFORMED_IDENTIFIER, str(error)) from error


def authorisation_from_wire(
    snapshot: wire.AuthorisationSnapshot, authorising_party: str
) -> Authorisation:
    """The snapshot as the ledger's value; the LoA is the first transferring Party's."""
    definition = snapshot.first_transfer_definition
    try:
        return Authorisation(
            authorisation_id=snapshot.authorisation_id,
            version=snapshot.version,
            authorising_party=authorising_party,
            authorised_on=snapshot.authorisation_date,
            cooperative_approach_id=snapshot.cooperative_approach_id,
            authorised_parties=frozenset(snapshot.authorised_parties),
            purposes=frozenset(Purpose(p.value) for p in snapshot.purposes),
            authorised_entities=frozenset(snapshot.authorised_entities),
            quantity_cap=snapshot.quantity_cap,
            mitigation_from=snapshot.mitigation_from,
            mitigation_to=snapshot.mitigation_to,
            use_from=snapshot.use_from,
            use_to=snapshot.use_to,
            terms=snapshot.terms,
            oimp_first_transfer=(
                None if definition is None else FirstTransferDefinition(definition.value)
            ),
        )
    except DomainError as error:
        raise MappingError(error.reason, error.message) from error


def purpose_from_wire(purpose: wire.Purpose) -> Purpose:
    return Purpose(purpose.value)


def notice_to_wire(
    notice: FirstTransferNotice, noticing_registry_id: str
) -> wire.FirstTransferNotice:
    try:
        return wire.FirstTransferNotice(
            notice_id=UUID(notice.notice_id),
            authorising_party=notice.authorising_party,
            noticing_registry_id=noticing_registry_id,
            authorisation_id=notice.authorisation_id,
            authorisation_version=notice.authorisation_version,
            action=wire.NoticeAction(notice.action.value),
            year=notice.year,
            occurred_at=notice.occurred_at,
            blocks=tuple(block_to_wire(spec) for spec in notice.blocks),
        )
    except ValidationError as error:
        raise MappingError(ReasonCode.MALFORMED_BLOCK, str(error)) from error


def notice_from_wire(notice: wire.FirstTransferNotice, sender_party: str) -> FirstTransferNotice:
    """The notice as the ledger's value; the sender is the (verified) noticing Party."""
    return FirstTransferNotice(
        notice_id=str(notice.notice_id),
        authorising_party=notice.authorising_party,
        noticing_party=sender_party,
        authorisation_id=notice.authorisation_id,
        authorisation_version=notice.authorisation_version,
        action=RetirementAction(notice.action.value),
        year=notice.year,
        occurred_at=notice.occurred_at,
        blocks=tuple(block_from_wire(block) for block in notice.blocks),
    )
