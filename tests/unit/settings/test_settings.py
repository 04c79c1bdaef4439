"""Settings are validated at start, with one readable sentence per bad value."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from registry.settings import (
    DEFAULT_KAFKA_BOOTSTRAP_SERVERS,
    Settings,
    SettingsError,
    load_settings,
)

pytestmark = pytest.mark.unit

STRONG_TOKEN = "k3Y-9f0aQ2mX7pL1zR8w"
OTHER_STRONG_TOKEN = "b7Tn-2qP9sV4cW6yH0jE"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's shell may export REGISTRY_* values; tests must not see them."""
    for name in list(os.environ):
        if name.startswith("REGISTRY_"):
            monkeypatch.delenv(name)


def _problems(**values: Any) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(**values)
    return caught.value.problems


def test_minimal_valid_settings_fill_in_defaults(tmp_path: Path) -> None:
    settings = load_settings(
        party="THA", registry_id="THA01", operator_tokens=[STRONG_TOKEN], data_dir=tmp_path
    )
    assert settings.kafka_bootstrap_servers == DEFAULT_KAFKA_BOOTSTRAP_SERVERS
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert str(tmp_path.resolve()) in settings.resolved_database_url
    assert settings.resolved_key_path.parent == tmp_path
    assert settings.local_mode is False


def test_reads_prefixed_environment_with_comma_separated_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REGISTRY_PARTY", "GHA")
    monkeypatch.setenv("REGISTRY_REGISTRY_ID", "GHA01")
    monkeypatch.setenv("REGISTRY_OPERATOR_TOKENS", f"{STRONG_TOKEN}, {OTHER_STRONG_TOKEN}")
    monkeypatch.setenv("REGISTRY_API_PORT", "9100")
    settings = load_settings()
    assert settings.operator_tokens == [STRONG_TOKEN, OTHER_STRONG_TOKEN]
    assert settings.api_port == 9100


def test_reads_an_env_file_with_json_token_list(tmp_path: Path) -> None:
    env_file = tmp_path / "node.env"
    env_file.write_text(
        "REGISTRY_PARTY=CHE\n"
        "REGISTRY_REGISTRY_ID=CHE01\n"
        f'REGISTRY_AUDITOR_TOKENS=["{OTHER_STRONG_TOKEN}"]\n'
        f"REGISTRY_OPERATOR_TOKENS={STRONG_TOKEN}\n"
    )
    settings = load_settings(env_file=env_file)
    assert settings.party == "CHE"
    assert settings.auditor_tokens == [OTHER_STRONG_TOKEN]


def test_missing_env_file_is_named() -> None:
    problems = _problems(env_file=Path("/nonexistent/node.env"))
    assert "does not exist" in problems[0]


def test_every_missing_value_is_reported_by_its_variable_name() -> None:
    assert _problems() == ["REGISTRY_PARTY is missing", "REGISTRY_REGISTRY_ID is missing"]


@pytest.mark.parametrize(
    ("values", "expected_fragment"),
    [
        ({"party": "tha", "registry_id": "THA01"}, "REGISTRY_PARTY"),
        ({"party": "THAI", "registry_id": "THA01"}, "REGISTRY_PARTY"),
        ({"party": "THA", "registry_id": "THA1"}, "REGISTRY_REGISTRY_ID"),
        ({"party": "THA", "registry_id": "GHA01"}, "must start with the Party code"),
        ({"party": "THA", "registry_id": "THA01", "api_port": 70000}, "REGISTRY_API_PORT"),
    ],
)
def test_wrong_values_are_named(values: dict[str, object], expected_fragment: str) -> None:
    problems = _problems(operator_tokens=[STRONG_TOKEN], **values)
    assert any(expected_fragment in problem for problem in problems), problems


@pytest.mark.parametrize("token", ["changeme", "CHANGEME", "secret", "short-token"])
def test_weak_tokens_are_refused_outside_local_mode(token: str) -> None:
    problems = _problems(party="THA", registry_id="THA01", operator_tokens=[token])
    assert any("REGISTRY_OPERATOR_TOKENS" in problem for problem in problems), problems
    assert all(repr(token) not in problem for problem in problems), "a secret leaked"


def test_weak_auditor_tokens_are_refused_too() -> None:
    problems = _problems(
        party="THA", registry_id="THA01", operator_tokens=[STRONG_TOKEN], auditor_tokens="changeme"
    )
    assert any("REGISTRY_AUDITOR_TOKENS" in problem for problem in problems)


def test_no_operator_token_is_refused_outside_local_mode() -> None:
    problems = _problems(party="THA", registry_id="THA01")
    assert any("at least one operator token" in problem for problem in problems)


def test_local_mode_tolerates_placeholder_tokens() -> None:
    settings = load_settings(
        party="THA", registry_id="THA01", operator_tokens="changeme", local_mode=True
    )
    assert settings.operator_tokens == ["changeme"]


def test_a_token_cannot_hold_two_roles() -> None:
    problems = _problems(
        party="THA",
        registry_id="THA01",
        operator_tokens=[STRONG_TOKEN],
        auditor_tokens=[STRONG_TOKEN],
    )
    assert any("both an operator token and an auditor token" in p for p in problems)


def test_tokens_stay_out_of_the_repr() -> None:
    settings = Settings(party="THA", registry_id="THA01", operator_tokens=[STRONG_TOKEN])
    assert STRONG_TOKEN not in repr(settings)
