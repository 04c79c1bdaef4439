"""Letters of Authorisation (AEF table 2): record, new version, revoke, read.

A change to an LoA is a new version, and so is a revocation; nothing is ever
edited in place. Reading LoAs is public: Article 6 asks Parties to publish
them, and they name Parties and entities, not account holders.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from registry.application import handlers
from registry.application.commands import RecordAuthorisation, RevokeAuthorisation
from registry.bootstrap import Node
from registry.domain.authorisations import (
    Authorisation,
    FirstTransferDefinition,
    Purpose,
)
from registry.domain.errors import DomainError, ReasonCode
from registry.entrypoints.api.auth import ANONYMOUS_ALLOWED, Operator, PublicReader
from registry.entrypoints.api.dependencies import NodeDep, execute
from registry.entrypoints.api.schemas import (
    AuthorisationId,
    CooperativeApproachId,
    EntityId,
    PartyCode,
    Quantity,
    RequestModel,
    Terms,
    Version,
)

router = APIRouter(prefix="/authorisations", tags=["authorisations"])

AUTHORISED_PARTIES_MAX = 200
AUTHORISED_ENTITIES_MAX = 1_000


class AuthorisationTerms(RequestModel):
    """What one version of an LoA says (everything but its id and version)."""

    authorised_on: date
    cooperative_approach_id: CooperativeApproachId
    authorised_parties: list[PartyCode] = Field(min_length=1, max_length=AUTHORISED_PARTIES_MAX)
    purposes: list[Purpose] = Field(min_length=1, max_length=len(Purpose))
    authorised_entities: list[EntityId] = Field(
        default_factory=list, max_length=AUTHORISED_ENTITIES_MAX
    )
    quantity_cap: Quantity | None = None
    mitigation_from: date | None = None
    mitigation_to: date | None = None
    use_from: date | None = None
    use_to: date | None = None
    terms: Terms = ""
    oimp_first_transfer: FirstTransferDefinition | None = None

    def to_domain(self, authorisation_id: str, version: int, party: str) -> Authorisation:
        return Authorisation(
            authorisation_id=authorisation_id,
            version=version,
            authorising_party=party,
            authorised_on=self.authorised_on,
            cooperative_approach_id=self.cooperative_approach_id,
            authorised_parties=frozenset(self.authorised_parties),
            purposes=frozenset(self.purposes),
            authorised_entities=frozenset(self.authorised_entities),
            quantity_cap=self.quantity_cap,
            mitigation_from=self.mitigation_from,
            mitigation_to=self.mitigation_to,
            use_from=self.use_from,
            use_to=self.use_to,
            terms=self.terms,
            oimp_first_transfer=self.oimp_first_transfer,
        )


class NewAuthorisationIn(AuthorisationTerms):
    authorisation_id: AuthorisationId


class NewVersionIn(AuthorisationTerms):
    version: Version = Field(
        ge=2, description="the current version plus one; a stale number is refused (409)"
    )


class AuthorisationOut(BaseModel):
    authorisation_id: str
    version: int
    authorising_party: str
    authorised_on: date
    cooperative_approach_id: str
    authorised_parties: list[str]
    purposes: list[Purpose]
    authorised_entities: list[str]
    quantity_cap: int | None
    mitigation_from: date | None
    mitigation_to: date | None
    use_from: date | None
    use_to: date | None
    terms: str
    oimp_first_transfer: FirstTransferDefinition | None
    revoked: bool

    @classmethod
    def of(cls, loa: Authorisation) -> AuthorisationOut:
        return cls(
            authorisation_id=loa.authorisation_id,
            version=loa.version,
            authorising_party=loa.authorising_party,
            authorised_on=loa.authorised_on,
            cooperative_approach_id=loa.cooperative_approach_id,
            authorised_parties=sorted(loa.authorised_parties),
            purposes=sorted(loa.purposes),
            authorised_entities=sorted(loa.authorised_entities),
            quantity_cap=loa.quantity_cap,
            mitigation_from=loa.mitigation_from,
            mitigation_to=loa.mitigation_to,
            use_from=loa.use_from,
            use_to=loa.use_to,
            terms=loa.terms,
            oimp_first_transfer=loa.oimp_first_transfer,
            revoked=loa.revoked,
        )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AuthorisationOut)
def record_authorisation(body: NewAuthorisationIn, node: NodeDep, _: Operator) -> AuthorisationOut:
    loa = body.to_domain(body.authorisation_id, 1, node.settings.party)
    return AuthorisationOut.of(
        execute(node, handlers.record_authorisation, RecordAuthorisation(loa))
    )


@router.post(
    "/{authorisation_id}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=AuthorisationOut,
)
def record_new_version(
    authorisation_id: AuthorisationId, body: NewVersionIn, node: NodeDep, _: Operator
) -> AuthorisationOut:
    loa = body.to_domain(authorisation_id, body.version, node.settings.party)
    return AuthorisationOut.of(
        execute(node, handlers.record_authorisation, RecordAuthorisation(loa))
    )


@router.post("/{authorisation_id}/revoke", response_model=AuthorisationOut)
def revoke_authorisation(
    authorisation_id: AuthorisationId, node: NodeDep, _: Operator
) -> AuthorisationOut:
    command = RevokeAuthorisation(authorisation_id)
    return AuthorisationOut.of(execute(node, handlers.revoke_authorisation, command))


@router.get("", response_model=list[AuthorisationOut], openapi_extra=ANONYMOUS_ALLOWED)
def list_current(node: NodeDep, _: PublicReader) -> list[AuthorisationOut]:
    """The current version of every LoA of this Party (revoked ones included, marked)."""
    return [AuthorisationOut.of(loa) for loa in execute(node, handlers.current_authorisations)]


@router.get("/{authorisation_id}", response_model=AuthorisationOut, openapi_extra=ANONYMOUS_ALLOWED)
def current_version(
    authorisation_id: AuthorisationId, node: NodeDep, _: PublicReader
) -> AuthorisationOut:
    return AuthorisationOut.of(_history(node, authorisation_id)[-1])


@router.get(
    "/{authorisation_id}/versions",
    response_model=list[AuthorisationOut],
    openapi_extra=ANONYMOUS_ALLOWED,
)
def list_versions(
    authorisation_id: AuthorisationId, node: NodeDep, _: PublicReader
) -> list[AuthorisationOut]:
    return [AuthorisationOut.of(loa) for loa in _history(node, authorisation_id)]


def _history(node: Node, authorisation_id: str) -> list[Authorisation]:
    versions = execute(node, handlers.authorisation_history, authorisation_id)
    if not versions:
        raise DomainError(
            ReasonCode.NO_AUTHORISATION, f"no authorisation {authorisation_id} by this Party"
        )
    return versions
