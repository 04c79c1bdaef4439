"""The public page in a real browser, on real node processes: Debian's Chromium via Playwright.

Playwright's own browser download cannot work on our build machines, so the
test drives ``/usr/bin/chromium`` and installs it first with
``deploy/browser/install_chromium.sh`` when it is missing. Under CI a browser
that cannot be had is a failure, not a skip.

The federation is the module's seeded CHE/GHA/THA one (``federation_module``):
GHA hosts approach CA0001 with Switzerland and holds its issued units.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploy.federation.launcher import Federation, NodeClient
from deploy.federation.seed import (
    AUTHORISATIONS,
    ENTITY_NAMES,
    ISSUANCES,
    approaches_for,
    national_account,
)
from playwright.sync_api import BrowserContext, Locator, Page, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "deploy" / "browser" / "install_chromium.sh"
CHROMIUM_PATH = Path("/usr/bin/chromium")
# Nothing in the browser may reach the network or update itself during a test.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# apt-get update + install of chromium on a fresh machine: about a minute.
INSTALL_TIMEOUT_S = 900
PAGE_LOAD_TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1280, "height": 900}

SENDER = "GHA"
RECEIVER = "CHE"
APPROACH_ID = "CA0001"
AUTHORISATION_ID = "GHA-LOA-CA0001-001"
VINTAGE = 2024
TRANSFER_QUANTITY = 250
# The server holds the POST up to this long for the outcome (the agreed contract).
TRANSFER_WAIT_S = 30
TRANSFER_FINAL_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.2


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium, installed by our script if it is missing."""
    if not CHROMIUM_PATH.is_file():
        try:
            result = subprocess.run(
                [str(INSTALL_SCRIPT)],
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            _unavailable(f"{INSTALL_SCRIPT.name} did not finish within {INSTALL_TIMEOUT_S} s")
        if result.returncode != 0 or not CHROMIUM_PATH.is_file():
            _unavailable(
                f"Chromium is missing and {INSTALL_SCRIPT.name} could not install it: "
                f"{(result.stderr or result.stdout).strip()[-500:]}"
            )
    return CHROMIUM_PATH


@pytest.fixture(scope="module")
def browser(
    chromium_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile directory of its own."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(chromium_path),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,  # type: ignore[arg-type]
        )
        context.set_default_timeout(PAGE_LOAD_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def _open_public_page(browser: BrowserContext, node: NodeClient) -> Page:
    page = browser.new_page()
    response = page.goto(node.public_url, wait_until="load")
    assert response is not None
    assert response.status == 200, response.status
    return page


def _cells(row: Locator) -> list[str]:
    cells = row.locator(":scope > th, :scope > td").all_inner_texts()
    return [" ".join(text.split()) for text in cells]


def test_sections_of_the_public_page_in_a_browser(
    federation_module: Federation, browser: BrowserContext, tmp_path: Path
) -> None:
    node = federation_module.node(SENDER)
    page = _open_public_page(browser, node)
    try:
        assert page.title().startswith(f"{SENDER} Article 6.2 registry")
        assert (
            page.get_by_role("heading", level=1).inner_text() == f"Article 6.2 registry of {SENDER}"
        )
        for heading in (
            "Holdings by cooperative approach and vintage",
            "Cross-border transfers",
            "Corresponding adjustments",
            "Authorisations (Letters of Authorisation)",
            "Agreed Electronic Format (AEF) reports",
        ):
            assert page.get_by_role("heading", name=heading, exact=True).is_visible()
        # The stylesheet loaded: only it draws a rule under the header.
        border = page.locator("header").evaluate("e => getComputedStyle(e).borderBottomStyle")
        assert border == "solid"

        rows = [_cells(row) for row in page.locator("#holdings table tbody tr").all()]
        # The page shows what the public JSON API says, formatted for a reader.
        with node.public() as client:
            totals = client.get("/v1/holdings/totals").json()
        assert rows == [
            [
                total["cooperative_approach_id"],
                str(total["vintage"]),
                total["metric"],
                f"{total['held']:,}",
                f"{total['retired']:,}",
                f"{total['cancelled']:,}",
            ]
            for total in totals
        ]
        # What the seed issued at the sender, under the approaches this federation has.
        present = {
            a.cooperative_approach_id
            for a in approaches_for([p.party for p in federation_module.spec.parties])
        }
        issued = sorted(
            [i.cooperative_approach_id, str(i.vintage)]
            for i in ISSUANCES[SENDER]
            if i.cooperative_approach_id in present
        )
        assert sorted(row[:2] for row in rows) == issued
        assert [APPROACH_ID, str(VINTAGE)] in issued

        loas = page.locator("#authorisations table tbody tr th").all_inner_texts()
        assert sorted(loas) == sorted(
            loa.authorisation_id
            for loa in AUTHORISATIONS[SENDER]
            if loa.cooperative_approach_id in present
        )

        json_link = page.get_by_role("link", name=f"JSON for {time.gmtime().tm_year}")
        href = json_link.get_attribute("href")
        assert href == f"/v1/reports/aef/{time.gmtime().tm_year}?format=json"

        text = page.locator("body").inner_text()
        for private in (*ENTITY_NAMES.values(), national_account(SENDER)):
            assert private not in text

        screenshot = tmp_path / "public-page-gha.png"
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 0
        print(f"screenshot: {screenshot}")
    finally:
        page.close()


def _transfer_view(node: NodeClient, transfer_id: str) -> dict[str, Any] | None:
    with node.operator() as client:
        response = client.get(f"/v1/transfers/{transfer_id}")
    if response.status_code == httpx.codes.NOT_FOUND:
        return None
    assert response.status_code == httpx.codes.OK, response.text
    view: dict[str, Any] = response.json()
    return view


def _wait_committed(node: NodeClient, transfer_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + TRANSFER_FINAL_TIMEOUT_S
    view = None
    while time.monotonic() < deadline:
        view = _transfer_view(node, transfer_id)
        if view is not None and view["status"] in ("COMMITTED", "ABORTED"):
            assert view["status"] == "COMMITTED", view
            return view
        time.sleep(POLL_INTERVAL_S)
    raise AssertionError(f"{node.party} did not see {transfer_id} final; last view: {view}")


def _blocks_on_page(page: Page, section: str, transfer_id: str) -> tuple[list[str], list[str]]:
    """(the row's cells, its block identifiers) for one transfer in a section of the page."""
    row = f'#{section} tr[data-transfer-id="{transfer_id}"]'
    assert page.locator(row).count() == 1, f"{transfer_id} not in #{section}"
    firsts = page.locator(f"{row} .first-identifier").all_inner_texts()
    lasts = page.locator(f"{row} .last-identifier").all_inner_texts()
    return _cells(page.locator(row)), [
        f"{first}..{last}" for first, last in zip(firsts, lasts, strict=True)
    ]


def test_a_committed_transfer_appears_on_both_public_pages(
    federation_module: Federation, browser: BrowserContext
) -> None:
    sender = federation_module.node(SENDER)
    receiver = federation_module.node(RECEIVER)
    transfer_id = str(uuid.uuid4())
    body = {
        "transfer_id": transfer_id,
        "from_account_id": national_account(SENDER),
        "to_party": RECEIVER,
        "to_account_id": national_account(RECEIVER),
        "quantity": TRANSFER_QUANTITY,
        "authorisation_id": AUTHORISATION_ID,
        "purpose": "NDC",
        "cooperative_approach_id": APPROACH_ID,
        "vintage": VINTAGE,
    }
    with sender.operator() as client:
        response = client.post("/v1/transfers", params={"wait_s": TRANSFER_WAIT_S}, json=body)
    assert response.status_code == 202, response.text
    sent = _wait_committed(sender, transfer_id)
    received = _wait_committed(receiver, transfer_id)
    expected_blocks = [f"{b['first_identifier']}..{b['last_identifier']}" for b in sent["blocks"]]
    assert [f"{b['first_identifier']}..{b['last_identifier']}" for b in received["blocks"]] == (
        expected_blocks
    )

    pages = {
        party: _open_public_page(browser, node)
        for party, node in ((SENDER, sender), (RECEIVER, receiver))
    }
    try:
        out_cells, out_blocks = _blocks_on_page(pages[SENDER], "transfers-out", transfer_id)
        in_cells, in_blocks = _blocks_on_page(pages[RECEIVER], "transfers-in", transfer_id)
        assert (
            pages[SENDER].locator(f'#transfers-in tr[data-transfer-id="{transfer_id}"]').count()
            == 0
        )
        assert out_cells[:4] == [transfer_id, RECEIVER, "COMMITTED", f"{TRANSFER_QUANTITY:,}"]
        assert in_cells[:4] == [transfer_id, SENDER, "COMMITTED", f"{TRANSFER_QUANTITY:,}"]
        assert out_blocks == in_blocks == expected_blocks
    finally:
        for page in pages.values():
            page.close()
