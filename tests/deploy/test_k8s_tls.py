"""TLS on Kubernetes (components/tls, components/tls-cert-manager, overlays/tls): the learner serves TLS with a
certificate cert-manager keeps in a Secret, its probes move to the plaintext health port together with the
port declaration, nothing but kubelet reaches that port, actors verify with the CA alone, and both sides take
the token from one Secret."""

from __future__ import annotations

import re
import shutil
import textwrap

import pytest
import yaml

from .conftest import DEPLOY, REPO, run, tool
from .kustomize import (
    TARGETS,
    by_kind,
    container_env,
    learner_workload,
    pod_config,
    pods,
    render_copy,
    secret_files,
    service_of,
)

TLS_TARGETS = [t for t in TARGETS if t in ("overlays/production", "overlays/tls", "all-components")]


def test_tls_targets_exist():
    assert TLS_TARGETS == ["overlays/production", "overlays/tls", "all-components"]


@pytest.mark.parametrize("target", TLS_TARGETS)
def test_certificate_names_the_address_actors_dial(rendered, target, tmp_path):
    objects = rendered[target]
    learner_template = learner_workload(objects)["spec"]["template"]
    learner = learner_template["spec"]["containers"][0]
    config = pod_config(objects, learner_template, learner, tmp_path)
    assert config.tls_cert and config.tls_key and config.health_port
    files = secret_files(learner_template, learner)
    (secret,) = {files[container_env(objects, learner)[v]][0] for v in ("RELAYRL_TLS_CERT", "RELAYRL_TLS_KEY")}
    (certificate,) = [c for c in by_kind(objects, "Certificate").values() if c["spec"]["secretName"] == secret]
    for _, template in pods(objects):
        container = template["spec"]["containers"][0]
        if service_of(container) == "actor":
            host = container_env(objects, container)["RELAYRL_LEARNER"].rpartition(":")[0]
            assert host in certificate["spec"]["dnsNames"]
            actor = pod_config(objects, template, container, tmp_path)
            assert actor.tls_ca and actor.tls_cert is None
            # Only the CA certificate of the learner's Secret reaches actors, never its key.
            assert {key for name, key in secret_files(template, container).values() if name == secret} == {"ca.crt"}


@pytest.mark.parametrize("target", TLS_TARGETS)
def test_the_issuer_chain_resolves(rendered, target):
    """Certificate -> Issuer (CA) -> the CA Certificate's Secret -> a self-signed Issuer: each reference exists."""
    objects = rendered[target]
    issuers, certificates = by_kind(objects, "Issuer"), by_kind(objects, "Certificate")
    for name, certificate in certificates.items():
        ref = certificate["spec"]["issuerRef"]
        assert ref["kind"] == "Issuer" and ref["name"] in issuers, name
        issuer = issuers[ref["name"]]["spec"]
        if "ca" in issuer:
            (ca,) = [c for c in certificates.values() if c["spec"]["secretName"] == issuer["ca"]["secretName"]]
            assert ca["spec"]["isCA"] is True
        else:
            assert "selfSigned" in issuer, name


@pytest.mark.parametrize("target", TLS_TARGETS)
def test_health_port_is_declared_probed_and_not_exposed(rendered, target):
    objects = rendered[target]
    container = learner_workload(objects)["spec"]["template"]["spec"]["containers"][0]
    health = int(container_env(objects, container)["RELAYRL_HEALTH_PORT"])
    named = {p["containerPort"]: p["name"] for p in container["ports"]}
    assert named.get(health) == "health"
    for policy in by_kind(objects, "NetworkPolicy").values():
        for rule in policy["spec"]["ingress"]:
            if "ports" not in rule:  # every port: only learner ranks, from each other (components/learner-ranks)
                assert rule["from"] == [{"podSelector": policy["spec"]["podSelector"]}], rule
                continue
            assert not {p["port"] for p in rule["ports"]} & {"health", health}, "no pod may reach the health port"
    for service in by_kind(objects, "Service").values():
        assert health not in {p["port"] for p in service["spec"]["ports"]}
    grpc = next(p for p in by_kind(objects, "Service")["relayrl-learner"]["spec"]["ports"] if p["name"] == "grpc")
    assert grpc.get("appProtocol") != "kubernetes.io/h2c", "the gRPC port speaks TLS, not cleartext HTTP/2"


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_takes_the_token_from_one_secret_file(rendered, target, tmp_path):
    """Secure by default: in every overlay both services read the token (--auth-token-file) from a file the
    one Secret provides, never from the environment."""
    objects = rendered[target]
    sources = set()
    for _, template in pods(objects):
        container = template["spec"]["containers"][0]
        config = pod_config(objects, template, container, tmp_path)
        assert config.auth_token and config.auth_token_file, service_of(container)
        assert not any(v["name"] == "RELAYRL_AUTH_TOKEN" for v in container.get("env", []))
        sources.add(secret_files(template, container)[container_env(objects, container)["RELAYRL_AUTH_TOKEN_FILE"]])
    assert sources == {("relayrl-auth", "token")}


@pytest.mark.parametrize("target", [t for t in TARGETS if t not in TLS_TARGETS])
def test_without_the_component_no_tls(rendered, target, tmp_path):
    for _, template in pods(rendered[target]):
        container = template["spec"]["containers"][0]
        config = pod_config(rendered[target], template, container, tmp_path)
        assert not (config.tls_cert or config.tls_ca)


def test_the_certificate_holds_no_other_namespace(tmp_path):
    """Copied under another namespace, the certificate names nothing of the first one's."""
    objects = render_copy(tmp_path, "overlays/tls", namespace="second-run")
    (certificate,) = [c for c in by_kind(objects, "Certificate").values() if not c["spec"].get("isCA")]
    for name in certificate["spec"]["dnsNames"]:
        assert "." not in name or ".second-run.svc" in name, name


def test_the_documented_public_ca_overlay_drops_the_ca(tmp_path):
    """docs/DEPLOY.md's snippet for an issuer that fills no ca.crt, applied over overlays/tls: actors dial
    with TLS against the system trust store, and mount nothing of the learner's Secret."""
    doc = (REPO / "docs" / "DEPLOY.md").read_text()
    section = doc[doc.index("**An issuer that fills no `ca.crt`**"):]
    snippet = textwrap.dedent(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy, symlinks=True)
    overlay = copy / "k8s" / "overlays" / "public-ca"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: relayrl\n"
        "resources:\n  - ../tls\n" + snippet)
    result = run([tool("kubectl"), "kustomize", str(overlay)])
    assert result.returncode == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    (template,) = [t for _, t in pods(objects) if service_of(t["spec"]["containers"][0]) == "actor"]
    container = template["spec"]["containers"][0]
    config = pod_config(objects, template, container, tmp_path)
    assert config.tls and config.tls_ca is None and config.auth_token
    assert {name for name, _ in secret_files(template, container).values()} == {"relayrl-auth"}
