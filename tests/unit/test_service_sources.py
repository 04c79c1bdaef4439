"""The order in which the shared fixtures pick Kafka and PostgreSQL (tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.service_sources import Source, choose_source, container_failure_is_fatal


class Probe:
    """A Docker probe that records whether it was asked."""

    def __init__(self, answers: bool) -> None:
        self.answers = answers
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.answers


@pytest.mark.parametrize("daemon", [True, False])
def test_a_given_address_wins_and_docker_is_not_probed(daemon: bool) -> None:
    probe = Probe(daemon)
    assert choose_source("127.0.0.1:9092", probe) is Source.GIVEN
    assert probe.calls == 0


@pytest.mark.parametrize("given", [None, "", "   "])
def test_without_an_address_a_daemon_that_answers_gives_a_container(given: str | None) -> None:
    probe = Probe(True)
    assert choose_source(given, probe) is Source.CONTAINER
    assert probe.calls == 1


@pytest.mark.parametrize("given", [None, "", "  \n"])
def test_without_an_address_or_a_daemon_the_local_service_is_used(given: str | None) -> None:
    assert choose_source(given, Probe(False)) is Source.LOCAL


@pytest.mark.parametrize(
    ("environ", "fatal"),
    [({"CI": "true"}, True), ({"CI": "1"}, True), ({"CI": ""}, False), ({}, False)],
)
def test_a_failed_container_is_fatal_only_under_ci(environ: dict[str, str], fatal: bool) -> None:
    assert container_failure_is_fatal(environ) is fatal
