"""TLS, mutual TLS and the bearer token on a real learner; health stays reachable; secrets stay out of
logs, summary.json, metrics and --help."""

from __future__ import annotations

import json
import logging

import grpc
import pytest
from prometheus_client import generate_latest

from actor_service.client import channel_options, open_channel
from actor_service.config import ActorConfig
from learner_service.config import LearnerConfig
from relayrl.config import ConfigError, build_parser, load
from tests import clients
from tests.conftest import metric, wait_until
from tests.pki import CA

TOKEN = "s3cr3t-t0ken-0123456789abcdef"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca, other = CA(directory / "ca"), CA(directory / "other", name="someone-else")
    return {
        "ca": ca.pem,
        "server": ca.issue("learner", server=True),
        "named": ca.issue("learner-named", server=True, hosts=("learner.relayrl.internal",)),
        "client": ca.issue("actor", server=False),
        "other_ca": other.pem,
        "other_client": other.issue("intruder", server=False),
    }


def trains(learner, start_actor, **actor_flags) -> None:
    actor = start_actor(learner.address, **actor_flags)
    wait_until(lambda: learner.trainer.version >= 3, 30, "three updates from a TLS actor")
    actor.close()


def test_tls_serves_actors_that_verify_it_and_health_in_plaintext(start_learner, start_actor, pki):
    server = pki["server"]
    learner = start_learner(algo="a2c", n_steps=4, tls_cert=server.cert, tls_key=server.key, health_port=0)
    trains(learner, start_actor, tls_ca=pki["ca"])
    # plaintext, or a CA that did not sign the learner's certificate: no connection at all
    for ch in (clients.channel(learner.address), clients.channel(learner.address, ca=pki["other_ca"])):
        code, _ = clients.refusal(ch, clients.hello())
        assert code == grpc.StatusCode.UNAVAILABLE
    # health: plaintext on --health-port (for Kubernetes' grpc probes), and over TLS on the gRPC port
    assert clients.health(clients.channel(f"127.0.0.1:{learner.health_port}")) == clients.SERVING
    assert clients.health(clients.channel(learner.address, ca=pki["ca"])) == clients.SERVING


def test_tls_server_name_overrides_the_address_host(start_learner, start_actor, pki):
    """A certificate for a DNS name, reached by IP address (a Service's cluster IP, a tunnel)."""
    named = pki["named"]
    learner = start_learner(algo="a2c", n_steps=4, tls_cert=named.cert, tls_key=named.key, health_port=0)
    code, _ = clients.refusal(clients.channel(learner.address, ca=pki["ca"]), clients.hello())
    assert code == grpc.StatusCode.UNAVAILABLE, "127.0.0.1 is not in the certificate"
    trains(learner, start_actor, tls_ca=pki["ca"], tls_server_name="learner.relayrl.internal")


def test_mutual_tls_refuses_actors_without_a_certificate_from_the_ca(start_learner, start_actor, pki):
    server, client, intruder = pki["server"], pki["client"], pki["other_client"]
    learner = start_learner(
        algo="a2c", n_steps=4, tls_cert=server.cert, tls_key=server.key, tls_ca=pki["ca"], health_port=0
    )
    trains(learner, start_actor, tls_ca=pki["ca"], tls_cert=client.cert, tls_key=client.key)
    before = learner.trainer.version
    for ch in (
        clients.channel(learner.address, ca=pki["ca"]),  # no client certificate
        clients.channel(learner.address, ca=pki["ca"], cert=intruder.cert, key=intruder.key),  # another CA's
    ):
        code, _ = clients.refusal(ch, clients.hello())
        assert code == grpc.StatusCode.UNAVAILABLE
    assert learner.registry.live_count() == 0 and learner.trainer.version == before
    assert clients.health(clients.channel(f"127.0.0.1:{learner.health_port}")) == clients.SERVING


def test_bearer_token_is_required_and_counted(start_learner, start_actor):
    learner = start_learner(algo="a2c", n_steps=4, auth_token=TOKEN)
    trains(learner, start_actor, auth_token=TOKEN)
    ch = clients.channel(learner.address)
    cases = [
        (clients.hello(), ()),
        (clients.hello(), (("authorization", "Bearer wrong-token-0123456789"),)),
        (clients.hello(), (("authorization", TOKEN),)),  # the token without the scheme
    ]
    for message, metadata in cases:
        code, details = clients.refusal(ch, message, metadata=metadata)
        assert code == grpc.StatusCode.UNAUTHENTICATED, details
    # raw bytes without the token are refused before anything reads them
    code, _ = clients.refusal(ch, b"\xff\x00garbage", raw=True)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    reg = learner.metrics.registry
    assert metric(reg, "relayrl_rejected_total", {"reason": "unauthenticated"}) == 4
    assert metric(reg, "relayrl_rejected_total", {"reason": "malformed"}) == 0
    assert clients.health(ch) == clients.SERVING, "health needs no token"
    # the right token with lower-case scheme works for a hand-made client too
    stream = clients.Stream(ch, metadata=(("authorization", f"bearer {TOKEN}"),)).send(
        clients.pb.ActorMessage(hello=clients.hello())
    )
    assert stream.receive().WhichOneof("kind") == "welcome"
    stream.close()


def test_secrets_stay_out_of_logs_summary_metrics_and_help(start_learner, start_actor, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    learner = start_learner(algo="a2c", n_steps=4, auth_token=TOKEN, run_dir=str(tmp_path), max_env_steps=600)
    actor = start_actor(learner.address, auth_token=TOKEN)
    clients.refusal(clients.channel(learner.address), clients.hello(), metadata=(("authorization", "Bearer nope"),))
    wait_until(lambda: actor.exit_code is not None, 30, "training to finish")
    learner.thread.join(timeout=10)
    summary = (tmp_path / "summary.json").read_text()
    assert json.loads(summary)["config"]["auth_token"] == "<redacted>"
    exposed = {
        "summary.json": summary,
        "logs": caplog.text + "".join(capsys.readouterr()),
        "metrics": generate_latest(learner.metrics.registry).decode(),
        "learner --help": build_parser(LearnerConfig, "relayrl learner", "").format_help(),
        "actor --help": build_parser(ActorConfig, "relayrl actor", "").format_help(),
        "learner config repr": repr(learner.config),
        "actor config repr": repr(load(ActorConfig, [], environ={"RELAYRL_AUTH_TOKEN": TOKEN})),
    }
    for where, text in exposed.items():
        assert TOKEN not in text, f"the token shows in {where}"
    assert "--auth-token" in exposed["learner --help"]


def test_the_token_from_a_file_as_a_mounted_secret_gives_it(start_learner, start_actor, tmp_path):
    """--auth-token-file (Kubernetes mounts the Secret as a file): both services read it, a trailing newline
    (as `kubectl create secret --from-file` keeps it) is dropped, an actor with another file's token is
    refused; a missing, short or doubled token fails at start naming the flag."""
    good, wrong = tmp_path / "token", tmp_path / "wrong"
    good.write_text(TOKEN + "\n")
    wrong.write_text("another-token-0123456789abcdef")
    learner = start_learner(algo="a2c", n_steps=4, auth_token_file=good)
    trains(learner, start_actor, auth_token_file=good)
    refused = start_actor(learner.address, auth_token_file=wrong)
    wait_until(lambda: metric(learner.metrics.registry, "relayrl_rejected_total", {"reason": "unauthenticated"}) > 0,
               30, "the actor with the wrong token to be refused")
    refused.close()
    short = tmp_path / "short"
    short.write_text("short")
    for cls in (LearnerConfig, ActorConfig):
        for argv, message in ((["--auth-token-file", str(tmp_path / "missing")], "--auth-token-file.*not a readable"),
                              (["--auth-token-file", str(short)], "--auth-token-file.*at least 16"),
                              (["--auth-token-file", str(good), "--auth-token", TOKEN], "not both")):
            with pytest.raises(ConfigError, match=message):
                load(cls, argv, environ={})


def replace_file(path, content: bytes) -> None:
    """As the kubelet updates a mounted Secret: the new file complete, then swapped in at once."""
    staged = path.with_name(path.name + ".new")
    staged.write_bytes(content)
    staged.replace(path)


def test_a_renewed_certificate_is_served_without_a_restart(start_learner, start_actor, tmp_path):
    """cert-manager renews the Secret and the kubelet swaps the files: new connections get the new
    certificate (here from a new CA, the worst case), open streams go on, and actors dialling with the
    renewed CA file connect; no restart. With the certificate read once at start, the renewed CA fails."""
    old_ca, new_ca = CA(tmp_path / "old"), CA(tmp_path / "new", name="renewed-ca")
    first, renewed = old_ca.issue("learner", server=True), new_ca.issue("learner-renewed", server=True)
    cert, key, ca = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt"
    for path, source in ((cert, first.cert), (key, first.key), (ca, old_ca.pem)):
        path.write_bytes(source.read_bytes())
    learner = start_learner(algo="a3c", n_steps=4, tls_cert=cert, tls_key=key, health_port=0)
    start_actor(learner.address, tls_ca=ca, actor_id="before-renewal")
    wait_until(lambda: learner.trainer.version >= 3, 30, "updates before the renewal")

    replace_file(key, renewed.key.read_bytes())
    replace_file(cert, renewed.cert.read_bytes())
    replace_file(ca, new_ca.pem.read_bytes())
    assert clients.health(clients.channel(learner.address, ca=new_ca.pem)) == clients.SERVING
    code, _ = clients.refusal(clients.channel(learner.address, ca=old_ca.pem), clients.hello())
    assert code == grpc.StatusCode.UNAVAILABLE, "the old certificate is still served"
    # The actor connected before the renewal trains on; one dialling with the renewed CA file joins it.
    before = learner.trainer.version
    start_actor(learner.address, tls_ca=ca, actor_id="after-renewal")
    wait_until(lambda: learner.registry.live_count() == 2, 30, "the second actor to connect with the renewed CA")
    wait_until(lambda: learner.trainer.version >= before + 3, 30, "updates after the renewal")


def test_tls_against_the_system_trust_store(start_learner, pki, tmp_path):
    """--tls without --tls-ca (an issuer that fills no ca.crt, e.g. ACME): TLS on, verified against the
    system's roots, which do not hold a private test CA: the certificate check fails."""
    server = pki["server"]
    learner = start_learner(algo="a2c", n_steps=4, tls_cert=server.cert, tls_key=server.key, health_port=0)
    config = load(ActorConfig, ["--learner", learner.address, "--tls"], environ={})
    assert config.tls and config.tls_ca is None
    channel = open_channel(config.learner, channel_options(config), tls=config.tls)
    code, details = clients.refusal(channel, clients.hello())
    # A handshake was tried, and the system's roots do not hold our CA (plaintext would fail otherwise).
    assert code == grpc.StatusCode.UNAVAILABLE and "CERTIFICATE_VERIFY_FAILED" in details, details
