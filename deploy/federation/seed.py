"""Seed a local federation through each node's operator API, as a registry operator would.

For the Parties present: open holding accounts; register every cooperative
approach whose two Parties are both present, in *both* registries (each Party
records the approaches it takes part in); record the transferring (host)
Party's Letter of Authorisation; issue authorised units into the host's
national account. Nothing is written to a database directly, so the seed
exercises the same validation and audit trail as any other client.

The approaches follow real bilateral Article 6.2 agreements (Ghana and
Switzerland, Thailand and Switzerland's Bangkok e-bus programme, Singapore and
Ghana, Japan and Thailand's JCM); ids, dates, caps and quantities are
illustrative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from deploy.federation.launcher import NodeClient

METRIC_TCO2E = "tCO2e"
GWP_AR5 = "AR5 100-year"
MITIGATION_TYPE = "Emission reductions"


def national_account(party: str) -> str:
    """The Party's own holding account: where issuances land and transfers arrive."""
    return f"{party}-GOV"


def entity_account(party: str) -> str:
    """An authorised entity's holding account (a buyer or a project developer)."""
    return f"{party}-ENTITY-1"


ENTITY_NAMES = {
    "CHE": "KliK Foundation (buyer for the Swiss NDC)",
    "GHA": "Ghana Carbon Markets Office project developer",
    "THA": "Bangkok e-bus operator",
    "SGP": "Singapore carbon tax liable entity",
    "JPN": "JCM project participant",
}


@dataclass(frozen=True)
class ApproachSeed:
    cooperative_approach_id: str
    host: str  # the Party where the mitigation happens: issues and first transfers
    buyers: tuple[str, ...]
    name: str
    in_force_from: date
    vintage_from: int
    vintage_to: int
    sectors: tuple[str, ...]
    activity_types: tuple[str, ...]
    omge_share: str | None = None  # decimal as text: the API takes it exactly

    @property
    def parties(self) -> tuple[str, ...]:
        return (self.host, *self.buyers)


@dataclass(frozen=True)
class AuthorisationSeed:
    authorisation_id: str
    cooperative_approach_id: str
    authorised_parties: tuple[str, ...]
    purposes: tuple[str, ...]
    quantity_cap: int
    oimp_first_transfer: str | None = None
    terms: str = ""


@dataclass(frozen=True)
class IssuanceSeed:
    cooperative_approach_id: str
    quantity: int
    vintage: int
    sector: str
    activity_type: str
    authorisation_id: str


APPROACHES: tuple[ApproachSeed, ...] = (
    ApproachSeed(
        "CA0001",
        host="GHA",
        buyers=("CHE",),
        name="Ghana-Switzerland: climate-smart rice and clean cookstoves",
        in_force_from=date(2020, 11, 23),
        vintage_from=2021,
        vintage_to=2030,
        sectors=("Agriculture", "Energy"),
        activity_types=("Rice cultivation (alternate wetting and drying)", "Clean cookstoves"),
    ),
    ApproachSeed(
        "CA0002",
        host="THA",
        buyers=("CHE",),
        name="Thailand-Switzerland: Bangkok e-bus programme",
        in_force_from=date(2022, 6, 24),
        vintage_from=2022,
        vintage_to=2030,
        sectors=("Transport",),
        activity_types=("Electric buses",),
        # 2 % of every first transfer is cancelled for overall mitigation (OMGE).
        omge_share="0.02",
    ),
    ApproachSeed(
        "CA0003",
        host="GHA",
        buyers=("SGP",),
        name="Ghana-Singapore implementation agreement",
        in_force_from=date(2023, 5, 18),
        vintage_from=2021,
        vintage_to=2030,
        sectors=("Energy",),
        activity_types=("Clean cookstoves",),
    ),
    ApproachSeed(
        "CA0004",
        host="THA",
        buyers=("JPN",),
        name="Japan-Thailand Joint Crediting Mechanism",
        in_force_from=date(2015, 11, 19),
        vintage_from=2021,
        vintage_to=2030,
        sectors=("Energy",),
        activity_types=("Solar PV",),
    ),
    # Illustrative, not a signed agreement: a plurilateral approach, so that units
    # Switzerland acquires from Ghana may move on to Thailand (units move only
    # between Parties that share the units' approach).
    ApproachSeed(
        "CA0005",
        host="GHA",
        buyers=("CHE", "THA"),
        name="Ghana-Switzerland-Thailand (illustrative plurilateral approach)",
        in_force_from=date(2024, 1, 1),
        vintage_from=2021,
        vintage_to=2030,
        sectors=("Waste",),
        activity_types=("Landfill gas capture",),
    ),
)

# Recorded by the host, the transferring Party (only it may authorise its units).
AUTHORISATIONS: Mapping[str, tuple[AuthorisationSeed, ...]] = {
    "GHA": (
        AuthorisationSeed(
            "GHA-LOA-CA0001-001",
            "CA0001",
            authorised_parties=("CHE",),
            purposes=("NDC",),
            quantity_cap=50_000,
            terms="Transfers to Switzerland for use towards its NDC.",
        ),
        AuthorisationSeed(
            "GHA-LOA-CA0003-001",
            "CA0003",
            authorised_parties=("SGP",),
            purposes=("NDC",),
            quantity_cap=20_000,
        ),
        AuthorisationSeed(
            "GHA-LOA-CA0005-001",
            "CA0005",
            authorised_parties=("CHE", "THA"),
            purposes=("NDC",),
            quantity_cap=10_000,
            terms="Transfers to Switzerland or Thailand, and onwards between them.",
        ),
    ),
    "THA": (
        AuthorisationSeed(
            "THA-LOA-CA0002-001",
            "CA0002",
            authorised_parties=("CHE",),
            purposes=("NDC", "OIMP"),
            quantity_cap=10_000,
            oimp_first_transfer="use_or_cancellation",
            terms="Bangkok e-bus programme; OIMP use counts as first transfer at use.",
        ),
        AuthorisationSeed(
            "THA-LOA-CA0004-001",
            "CA0004",
            authorised_parties=("JPN",),
            purposes=("OIMP",),
            quantity_cap=20_000,
            # First transfer at issuance: Thailand adjusts as soon as units exist.
            oimp_first_transfer="issuance",
        ),
    ),
}

ISSUANCES: Mapping[str, tuple[IssuanceSeed, ...]] = {
    "GHA": (
        IssuanceSeed(
            "CA0001",
            20_000,
            2024,
            "Agriculture",
            "Rice cultivation (alternate wetting and drying)",
            "GHA-LOA-CA0001-001",
        ),
        IssuanceSeed("CA0003", 3_000, 2024, "Energy", "Clean cookstoves", "GHA-LOA-CA0003-001"),
        IssuanceSeed("CA0005", 4_000, 2024, "Waste", "Landfill gas capture", "GHA-LOA-CA0005-001"),
    ),
    "THA": (
        IssuanceSeed("CA0002", 5_000, 2023, "Transport", "Electric buses", "THA-LOA-CA0002-001"),
        IssuanceSeed("CA0004", 2_000, 2024, "Energy", "Solar PV", "THA-LOA-CA0004-001"),
    ),
}

LOA_MITIGATION_FROM = date(2021, 1, 1)
LOA_MITIGATION_TO = date(2030, 12, 31)
LOA_USE_FROM = date(2021, 1, 1)
LOA_USE_TO = date(2035, 12, 31)
LOA_AUTHORISED_ON = date(2024, 1, 15)


class SeedError(RuntimeError):
    """A seed request was refused; the message quotes the node's reason."""


@dataclass
class SeedResult:
    accounts: dict[str, list[str]] = field(default_factory=dict)
    approaches: dict[str, list[str]] = field(default_factory=dict)
    authorisations: dict[str, list[str]] = field(default_factory=dict)
    issued: dict[str, int] = field(default_factory=dict)


# Each Party's NDC as the corresponding-adjustment methods need it (PUT /v1/ndc).
# Single-year 2030 targets over 2021-2030; the methods and the trajectory are
# illustrative, not what these Parties have chosen or reported.
NDC_PERIOD = (2021, 2030)
NDC_TRAJECTORY_FROM_T = 46_000_000  # illustrative tCO2e in 2021, falling linearly
NDC_TRAJECTORY_TO_T = 33_000_000  # illustrative tCO2e in 2030
NDC_METHODS = {"CHE": "TRAJECTORY", "GHA": "AVERAGING", "THA": "AVERAGING"}
NDC_METHOD_DEFAULT = "AVERAGING"


def ndc_body(party: str) -> dict[str, Any]:
    start, end = NDC_PERIOD
    method = NDC_METHODS.get(party, NDC_METHOD_DEFAULT)
    body: dict[str, Any] = {
        "ndc_type": "SINGLE_YEAR",
        "period_start": start,
        "period_end": end,
        "target_year": end,
        "method": method,
        "metrics": [METRIC_TCO2E],
    }
    if method == "TRAJECTORY":
        step = (NDC_TRAJECTORY_FROM_T - NDC_TRAJECTORY_TO_T) // (end - start)
        body["trajectory"] = [
            {"year": year, "level": NDC_TRAJECTORY_FROM_T - step * (year - start)}
            for year in range(start, end + 1)
        ]
    return body


def approaches_for(parties: Sequence[str]) -> list[ApproachSeed]:
    """The approaches whose Parties all run a node in this federation."""
    present = set(parties)
    return [a for a in APPROACHES if set(a.parties) <= present]


def _post(node: NodeClient, path: str, body: Mapping[str, Any]) -> Any:
    with node.operator() as client:
        response = client.post(f"/v1{path}", json=dict(body))
    if not response.is_success:
        raise SeedError(
            f"{node.party}: POST /v1{path} answered {response.status_code}: {response.text}"
        )
    return response.json()


def _put(node: NodeClient, path: str, body: Mapping[str, Any]) -> Any:
    with node.operator() as client:
        response = client.put(f"/v1{path}", json=dict(body))
    if not response.is_success:
        raise SeedError(
            f"{node.party}: PUT /v1{path} answered {response.status_code}: {response.text}"
        )
    return response.json()


def _approach_body(approach: ApproachSeed) -> dict[str, Any]:
    return {
        "cooperative_approach_id": approach.cooperative_approach_id,
        "participating_parties": sorted(approach.parties),
        "vintage_from": approach.vintage_from,
        "vintage_to": approach.vintage_to,
        "in_force_from": approach.in_force_from.isoformat(),
        "sectors": list(approach.sectors),
        "activity_types": list(approach.activity_types),
        "metric": METRIC_TCO2E,
        "omge_share": approach.omge_share,
        "name": approach.name,
    }


def _authorisation_body(loa: AuthorisationSeed) -> dict[str, Any]:
    return {
        "authorisation_id": loa.authorisation_id,
        "authorised_on": LOA_AUTHORISED_ON.isoformat(),
        "cooperative_approach_id": loa.cooperative_approach_id,
        "authorised_parties": list(loa.authorised_parties),
        "purposes": list(loa.purposes),
        "quantity_cap": loa.quantity_cap,
        "mitigation_from": LOA_MITIGATION_FROM.isoformat(),
        "mitigation_to": LOA_MITIGATION_TO.isoformat(),
        "use_from": LOA_USE_FROM.isoformat(),
        "use_to": LOA_USE_TO.isoformat(),
        "terms": loa.terms,
        "oimp_first_transfer": loa.oimp_first_transfer,
    }


def seed_federation(nodes: Mapping[str, NodeClient]) -> SeedResult:
    """Accounts, approaches, LoAs and issuances for the Parties in ``nodes``."""
    result = SeedResult()
    approaches = approaches_for(list(nodes))
    approach_ids = {approach.cooperative_approach_id for approach in approaches}
    for party, node in nodes.items():
        for account_id, name in (
            (national_account(party), f"{party} national holding account"),
            (entity_account(party), ENTITY_NAMES.get(party, f"{party} entity")),
        ):
            _post(node, "/accounts", {"account_id": account_id, "kind": "HOLDING", "name": name})
            result.accounts.setdefault(party, []).append(account_id)
        _put(node, "/ndc", ndc_body(party))
    for approach in approaches:
        for party in approach.parties:
            _post(nodes[party], "/cooperative-approaches", _approach_body(approach))
            result.approaches.setdefault(party, []).append(approach.cooperative_approach_id)
    for party, node in nodes.items():
        for loa in AUTHORISATIONS.get(party, ()):
            if loa.cooperative_approach_id in approach_ids:
                _post(node, "/authorisations", _authorisation_body(loa))
                result.authorisations.setdefault(party, []).append(loa.authorisation_id)
        lines = [
            {
                "quantity": issuance.quantity,
                "cooperative_approach_id": issuance.cooperative_approach_id,
                "vintage": issuance.vintage,
                "sector": issuance.sector,
                "activity_type": issuance.activity_type,
                "mitigation_type": MITIGATION_TYPE,
                "gwp_values": GWP_AR5,
                "authorisation_id": issuance.authorisation_id,
            }
            for issuance in ISSUANCES.get(party, ())
            if issuance.cooperative_approach_id in approach_ids
        ]
        if lines:
            issued = _post(
                node, "/issuances", {"account_id": national_account(party), "lines": lines}
            )
            result.issued[party] = int(issued["quantity"])
    return result


def holdings(node: NodeClient, account_id: str) -> int:
    with node.operator() as client:
        response = client.get(f"/v1/accounts/{account_id}/holdings")
    response.raise_for_status()
    return int(response.json()["total_quantity"])


__all__ = [
    "APPROACHES",
    "AUTHORISATIONS",
    "ISSUANCES",
    "SeedError",
    "SeedResult",
    "approaches_for",
    "entity_account",
    "holdings",
    "national_account",
    "seed_federation",
]
