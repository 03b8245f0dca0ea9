"""Prometheus metrics from a real ``idp serve`` with 2 workers (gunicorn's and granian's), its
metrics on a port of their own (``--metrics-port``): the counters of both workers add up (prometheus_client's
multiprocess mode), they move with logins and token requests, labels are bounded (endpoint
names, never paths), and the metrics are nowhere on the public port."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from idp.mfa.policy import MFA_ACR
from tests.helpers import Browser, auth_params, login_and_redeem, pkce
from tests.mfa.test_totp import enrol, login, mfa_page, post
from tests.operations.served import SERVERS, Served, served

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module", params=SERVERS)
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Served]:
    # without bubblewrap, the zygote runs unconfined (development mode): still a process
    env = {} if shutil.which("bwrap") else {"IDP_ACTIONS_INSECURE_DEV": "1"}
    folder = tmp_path_factory.mktemp("metrics")
    with served(folder, "--workers", "2", metrics_port=True, env=env, server=request.param) as s:
        yield s


def scrape(server: Served) -> tuple[str, Samples]:
    resp = requests.get(server.metrics_url, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return resp.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_with_logins_and_tokens_across_workers(server: Served) -> None:
    _, before = scrape(server)
    client, user = server.factory.gen_client(), server.factory.gen_user()
    login_and_redeem(server.url, client, user)
    _, challenge = pkce()
    wrong = Browser(server.url).authorize(auth_params(client, challenge), user, password="nope")
    assert wrong.status == 401
    m2m, audience = server.factory.m2m()
    machine = requests.post(
        f"{server.url}/oauth/token", auth=m2m.basic,
        data={"grant_type": "client_credentials", "audience": audience}, timeout=30,
    )  # fmt: skip
    assert machine.status_code == 200, machine.text
    with ThreadPoolExecutor(8) as pool:  # concurrent, so that both workers answer some
        answers = list(pool.map(lambda _: requests.get(f"{server.url}/.well-known/jwks.json",
                                                       timeout=30).status_code, range(40)))  # fmt: skip
    assert answers == [200] * 40

    _, after = scrape(server)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("idp_logins_total", outcome="success", reason="") == 1
    assert moved("idp_logins_total", outcome="failure", reason="wrong_credentials") == 1
    assert moved("idp_tokens_issued_total", grant_type="authorization_code") == 1
    assert moved("idp_tokens_issued_total", grant_type="client_credentials") == 1
    assert moved("idp_http_requests_total", endpoint="oauth.jwks", status="200") == 40
    assert moved("idp_http_requests_total", endpoint="oauth.token", status="200") == 2
    assert moved("idp_http_request_duration_seconds_count", endpoint="oauth.jwks") == 40
    # every worker writes to the shared folder; a scrape reads all of them
    writers = {p.stem.rsplit("_", 1)[1] for p in (server.instance / "prometheus").glob("*.db")}
    assert len(writers) >= 2, writers


def test_mfa_outcomes_by_factor(server: Served) -> None:
    _, before = scrape(server)
    client, user = server.factory.gen_client(), server.factory.gen_user()
    browser = Browser(server.url)
    result, _ = login(server, browser, client, user, acr_values=MFA_ACR)
    _, _, location = enrol(browser, mfa_page(result))  # enrolled and passed in this login
    assert location and "code=" in location
    other = Browser(server.url)
    result, _ = login(server, other, client, user, acr_values=MFA_ACR)
    wrong = post(other, mfa_page(result), {"action": "totp", "code": "000000"})
    assert wrong.status_code == 401
    _, after = scrape(server)
    for outcome in ("success", "failure"):
        moved = value(after, "idp_mfa_total", factor="totp", outcome=outcome) - value(
            before, "idp_mfa_total", factor="totp", outcome=outcome
        )
        assert moved == 1, outcome


def test_action_executions_and_their_duration(server: Served) -> None:
    _, before = scrape(server)
    client, audience = server.factory.m2m()
    server.factory.gen_action(
        "tag", "credentials-exchange",
        "def on_execute_credentials_exchange(event, api):\n"
        "    api.access_token.set_custom_claim('https://example.com/tag', 1)\n",
    )  # fmt: skip
    try:
        for _ in range(2):
            resp = requests.post(
                f"{server.url}/oauth/token", auth=client.basic,
                data={"grant_type": "client_credentials", "audience": audience}, timeout=60,
            )  # fmt: skip
            assert resp.status_code == 200, resp.text
    finally:
        server.factory.clear_actions()
    _, after = scrape(server)
    labels = {"trigger": "credentials-exchange", "action": "tag"}
    runs = value(after, "idp_action_executions_total", **labels, outcome="success")
    assert runs - value(before, "idp_action_executions_total", **labels, outcome="success") == 2
    assert value(after, "idp_action_duration_seconds_count", **labels) == 2
    assert value(after, "idp_action_duration_seconds_sum", **labels) > 0
    assert value(after, "idp_sandbox_zygotes") >= 1  # warm in the workers that ran it
    assert value(after, "idp_sandbox_busy") == 0


def test_labels_are_endpoint_names_never_paths(server: Served) -> None:
    junk = secrets.token_hex(8)
    assert requests.get(f"{server.url}/no/such/{junk}", timeout=10).status_code == 404
    client = server.factory.gen_client()
    _, challenge = pkce()
    page = Browser(server.url).authorize(auth_params(client, challenge))  # an interaction uid
    assert page.login_shown
    text, samples = scrape(server)
    assert junk not in text
    assert value(samples, "idp_http_requests_total", endpoint="unmatched", status="404") >= 1
    endpoints = {dict(labels).get("endpoint") for (_, labels) in samples} - {None}
    assert "flows.authorize" in endpoints
    assert all("/" not in e for e in endpoints if e), endpoints


def test_gauges_of_the_pools_are_exposed(server: Served) -> None:
    _, samples = scrape(server)
    names = {name for (name, _) in samples}
    assert {"idp_db_pool_checked_out", "idp_sandbox_zygotes", "idp_sandbox_busy"} <= names
    assert value(samples, "idp_db_pool_checked_out") >= 0


@pytest.mark.parametrize("path", ["/metrics", "/metrics/"])
def test_no_metrics_on_the_public_port(server: Served, path: str) -> None:
    assert requests.get(f"{server.url}{path}", timeout=10).status_code == 404
    # the Host header does not make the public port the metrics port
    spoofed = {"Host": f"127.0.0.1:{server.metrics_port}"}
    assert requests.get(f"{server.url}{path}", headers=spoofed, timeout=10).status_code == 404


@pytest.mark.parametrize(
    "path", ["/health/live", "/.well-known/openid-configuration", "/authorize", "/api/v2/users"]
)
def test_the_metrics_port_serves_nothing_else(server: Served, path: str) -> None:
    resp = requests.get(f"http://127.0.0.1:{server.metrics_port}{path}", timeout=10)
    assert resp.status_code == 404
