"""The node's Kafka security settings: SSL needs three readable files, one sentence each."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest

from registry.adapters.messaging import KafkaSecurityError, MessagingConfig
from registry.adapters.messaging.security import KafkaTls
from registry.settings import SettingsError, load_settings
from tests.conftest import REPO_ROOT, _load_script

pytestmark = pytest.mark.unit

STRONG_TOKEN = "k3Y-9f0aQ2mX7pL1zR8w"
# The unprivileged user of Debian and most Linux systems.
NOBODY_ID = 65534


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("REGISTRY_"):
            monkeypatch.delenv(name)


@pytest.fixture
def pki(tmp_path: Path) -> Any:
    script = _load_script("a6_deploy_kafka_pki", REPO_ROOT / "deploy" / "kafka" / "pki.py")
    return script.create_pki(tmp_path / "pki", ["CHE", "GHA"], brokers=3)


def _settings(**values: Any) -> Any:
    return load_settings(party="CHE", registry_id="CHE01", operator_tokens=[STRONG_TOKEN], **values)


def _problems(**values: Any) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        _settings(**values)
    return caught.value.problems


def test_plaintext_is_the_default_and_has_no_tls() -> None:
    settings = _settings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    config = MessagingConfig.from_settings(settings)
    assert config.tls is None
    assert config.create_topics is True


def test_ssl_settings_give_the_node_its_identity_and_leave_topics_to_the_admin(pki: Any) -> None:
    identity = pki.parties["CHE"]
    settings = _settings(
        kafka_security_protocol="SSL",
        kafka_ssl_ca_path=identity.ca_path,
        kafka_ssl_cert_path=identity.cert_path,
        kafka_ssl_key_path=identity.key_path,
    )
    config = MessagingConfig.from_settings(settings)
    assert config.tls == KafkaTls(identity.ca_path, identity.cert_path, identity.key_path)
    assert config.create_topics is False
    # The files load into one client context that verifies the brokers.
    assert config.tls is not None
    assert config.tls.ssl_context().check_hostname is True


def test_ssl_without_its_files_names_each_missing_variable() -> None:
    problems = _problems(kafka_security_protocol="SSL")
    assert len(problems) == 3
    for name in ("CA_PATH", "CERT_PATH", "KEY_PATH"):
        assert any(f"REGISTRY_KAFKA_SSL_{name} is missing" in p for p in problems), problems


def test_an_empty_path_in_the_environment_is_missing_not_the_current_directory(
    pki: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = pki.parties["CHE"]
    monkeypatch.setenv("REGISTRY_KAFKA_SSL_KEY_PATH", "")
    problems = _problems(
        kafka_security_protocol="SSL",
        kafka_ssl_ca_path=identity.ca_path,
        kafka_ssl_cert_path=identity.cert_path,
    )
    assert len(problems) == 1, problems
    assert problems[0].startswith("REGISTRY_KAFKA_SSL_KEY_PATH is missing"), problems


def test_a_wrong_path_and_a_directory_are_one_sentence_each(pki: Any, tmp_path: Path) -> None:
    identity = pki.parties["CHE"]
    problems = _problems(
        kafka_security_protocol="SSL",
        kafka_ssl_ca_path=tmp_path / "nowhere.crt",
        kafka_ssl_cert_path=tmp_path,
        kafka_ssl_key_path=identity.key_path,
    )
    assert problems == [
        f"REGISTRY_KAFKA_SSL_CA_PATH {str(tmp_path / 'nowhere.crt')!r} does not exist",
        f"REGISTRY_KAFKA_SSL_CERT_PATH {str(tmp_path)!r} is not a file",
    ]


def _as_unprivileged_user(function: Any) -> Any:
    """``function()``'s JSON result, computed in a forked child that is not root.

    Root reads every file whatever its mode, and the tests run as root in CI, so the
    child gives up root (as the node's own user would never have had it).
    """
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        status = 1
        try:
            os.close(read_end)
            os.setgid(NOBODY_ID)
            os.setuid(NOBODY_ID)
            os.write(write_end, json.dumps(function()).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        data = reader.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged check failed"
    return json.loads(data)


def test_an_unreadable_key_is_named(pki: Any) -> None:
    identity = pki.parties["CHE"]
    # A directory the unprivileged user may enter, with the CA and certificate it may
    # read and a key only root may.
    shared = Path(tempfile.mkdtemp(prefix="a6-tls-"))
    try:
        shared.chmod(0o755)
        paths = {}
        for name, source, mode in (
            ("ca", identity.ca_path, 0o644),
            ("cert", identity.cert_path, 0o644),
            ("key", identity.key_path, 0o000),
        ):
            paths[name] = shared / source.name
            shutil.copyfile(source, paths[name])
            paths[name].chmod(mode)
        values = {
            "kafka_security_protocol": "SSL",
            "kafka_ssl_ca_path": paths["ca"],
            "kafka_ssl_cert_path": paths["cert"],
            "kafka_ssl_key_path": paths["key"],
        }
        if os.geteuid() == 0:
            problems = _as_unprivileged_user(lambda: _problems(**values))
        else:
            problems = _problems(**values)
    finally:
        shutil.rmtree(shared)
    assert len(problems) == 1
    assert "REGISTRY_KAFKA_SSL_KEY_PATH" in problems[0]
    assert "cannot be read" in problems[0]


def test_tls_files_with_plaintext_are_refused_rather_than_ignored(pki: Any) -> None:
    problems = _problems(kafka_ssl_ca_path=pki.ca_cert_path)
    assert len(problems) == 1
    assert (
        "REGISTRY_KAFKA_SSL_CA_PATH set but REGISTRY_KAFKA_SECURITY_PROTOCOL is PLAINTEXT"
        in (problems[0])
    )


def test_a_certificate_that_does_not_match_its_key_is_one_sentence(pki: Any) -> None:
    che, gha = pki.parties["CHE"], pki.parties["GHA"]
    with pytest.raises(KafkaSecurityError) as caught:
        KafkaTls(che.ca_path, che.cert_path, gha.key_path).ssl_context()
    message = str(caught.value)
    assert "\n" not in message
    assert str(che.cert_path) in message
    assert "matching PEM pair" in message


def test_a_ca_file_that_is_not_pem_is_named(pki: Any, tmp_path: Path) -> None:
    garbage = tmp_path / "ca.crt"
    garbage.write_text("not a certificate\n")
    che = pki.parties["CHE"]
    with pytest.raises(KafkaSecurityError, match="REGISTRY_KAFKA_SSL_CA_PATH"):
        KafkaTls(garbage, che.cert_path, che.key_path).ssl_context()


def test_the_pki_writes_keys_for_their_owner_only_and_certificates_from_one_ca(pki: Any) -> None:
    from cryptography import x509

    ca = x509.load_pem_x509_certificate(pki.ca_cert_path.read_bytes())
    identities = [*pki.brokers, pki.admin, *pki.parties.values()]
    assert [identity.principal for identity in identities] == [
        "broker-1",
        "broker-2",
        "broker-3",
        "federation-admin",
        "party.CHE",
        "party.GHA",
    ]
    for identity in identities:
        assert stat.S_IMODE(identity.key_path.stat().st_mode) == 0o600, identity.key_path
        certificate = x509.load_pem_x509_certificate(identity.cert_path.read_bytes())
        certificate.verify_directly_issued_by(ca)
        common_name = certificate.subject.rfc4514_string()
        assert common_name == f"CN={identity.principal}"
    assert stat.S_IMODE((pki.root / "ca" / "ca.key").stat().st_mode) == 0o600
    for index in (1, 2, 3):
        assert stat.S_IMODE(pki.broker_keystore_path(index).stat().st_mode) == 0o600


def test_the_pki_is_idempotent_and_extends_with_new_parties(pki: Any) -> None:
    script = _load_script("a6_deploy_kafka_pki", REPO_ROOT / "deploy" / "kafka" / "pki.py")
    before = pki.parties["CHE"].cert_path.read_bytes()
    again = script.create_pki(pki.root, ["CHE", "GHA", "KEN"], brokers=3)
    assert again.parties["CHE"].cert_path.read_bytes() == before
    assert again.parties["KEN"].cert_path.is_file()


def test_a_party_keeps_its_key_and_gets_a_certificate_for_its_request(
    pki: Any, tmp_path: Path
) -> None:
    from cryptography import x509

    script = _load_script("a6_deploy_kafka_pki", REPO_ROOT / "deploy" / "kafka" / "pki.py")
    key_path, csr_path = script.request_certificate(tmp_path / "at-KEN", "KEN")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert_path = script.sign_request(pki.root, csr_path, "KEN")
    assert not (cert_path.parent / "node.key").exists(), "the admin never holds the key"
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    certificate.verify_directly_issued_by(
        x509.load_pem_x509_certificate(pki.ca_cert_path.read_bytes())
    )
    # The Party's own key and the signed certificate load as one mTLS identity.
    KafkaTls(pki.ca_cert_path, cert_path, key_path).ssl_context()


def test_a_request_for_another_partys_principal_is_refused(pki: Any, tmp_path: Path) -> None:
    script = _load_script("a6_deploy_kafka_pki", REPO_ROOT / "deploy" / "kafka" / "pki.py")
    _, csr_path = script.request_certificate(tmp_path / "at-KEN", "CHE")
    with pytest.raises(script.PkiError, match=r"asks for CN=party\.CHE, not CN=party\.KEN"):
        script.sign_request(pki.root, csr_path, "KEN")
    assert not (pki.root / "parties" / "KEN" / "node.crt").exists()
