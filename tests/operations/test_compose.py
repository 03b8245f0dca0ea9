"""``compose.yaml`` (two idp instances, PostgreSQL, Redis, haproxy) holds together: no Docker
engine runs in CI, so the file is read and its pieces checked against each other and against
idp's own configuration (every ``IDP_*`` is a setting, and the instances' settings pass the
start-up checks, ``CLUSTER`` included)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from idp.config import SETTINGS, load_settings

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s" * 64  # stands for ${IDP_SECRET_KEY}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` / ``${VAR:?error}``, with the README's variables set."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name == "IDP_SECRET_KEY":
            return SECRET
        assert op == ":-", f"${{{name}}} must be set by the operator: say so in the README"
        return arg

    escaped = value.replace("$$", "\0")  # compose's literal dollar, left to the shell
    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", one, escaped).replace("\0", "$")


def _instances(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose["services"].items()
        if svc.get("build") == "." and "serve" in " ".join(svc.get("command", []))
    }


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: _interpolate(str(v)) for k, v in service["environment"].items()}


def test_two_instances_of_the_one_image_share_everything(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "haproxy", "init"} <= set(services)
    instances = _instances(compose)
    assert len(instances) >= 2
    envs = [_env(svc) for svc in instances.values()]
    for key in ("IDP_ISSUER", "IDP_SECRET_KEY", "IDP_DATABASE_URL", "IDP_REDIS_URL"):
        assert len({env[key] for env in envs}) == 1, f"{key} differs between instances"
    assert _env(services["init"]) == envs[0]  # init migrates the database they use
    for name, svc in instances.items():
        assert svc.get("image") == services["init"].get("image"), name  # the one Dockerfile
        assert svc["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert "ports" not in svc, f"{name} is reached through haproxy only"


def test_every_idp_variable_is_a_setting_and_passes_the_start_up_checks(
    compose: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [*_instances(compose), "init"]:
        env = _env(compose["services"][name])
        for key in env:
            assert key.startswith("IDP_"), key
            assert key[4:] in SETTINGS or key == "IDP_DEMO", f"{name}: {key} is no setting"
        for key, value in env.items():
            if key != "IDP_DEMO":
                monkeypatch.setenv(key, value)
        settings = load_settings(tmp_path)  # raises on CLUSTER without Redis, SQLite, ...
        assert settings["CLUSTER"] is True and settings["REDIS_URL"]


def test_urls_name_the_services_that_serve_them(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = _env(next(iter(_instances(compose).values())))
    db = re.fullmatch(
        r"postgresql\+psycopg://(\w+):(\w+)@([\w-]+):5432/(\w+)", env["IDP_DATABASE_URL"]
    )
    assert db, env["IDP_DATABASE_URL"]
    pg = {k: _interpolate(str(v)) for k, v in services["postgres"]["environment"].items()}
    assert (db[1], db[2], db[3], db[4]) == (
        pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], "postgres", pg["POSTGRES_DB"],
    )  # fmt: skip
    assert re.fullmatch(r"redis://redis:6379/\d+", env["IDP_REDIS_URL"])
    published = {p.split(":")[0]: p.split(":")[1] for p in services["haproxy"]["ports"]}
    issuer_port = env["IDP_ISSUER"].rsplit(":", 1)[1]
    assert issuer_port in published, "the issuer is the load balancer's published address"
    proxy = services["haproxy"]["networks"]["default"]["ipv4_address"]
    assert env["IDP_TRUSTED_PROXIES"] == proxy  # X-Forwarded-For believed from haproxy alone
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert proxy.rsplit(".", 1)[0] == subnet.split("/")[0].rsplit(".", 1)[0]
    for name, svc in services.items():
        for needed in svc.get("depends_on", []):
            assert needed in services, f"{name} depends on unknown {needed}"
        for volume in svc.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"], f"{name}: {volume}"


def test_haproxy_balances_the_instances_on_their_port(compose: dict[str, Any]) -> None:
    services = compose["services"]
    cfg = (ROOT / services["haproxy"]["build"] / "haproxy.cfg").read_text()
    servers = dict(re.findall(r"^\s*server\s+\S+\s+([\w-]+):(\d+)", cfg, re.M))
    instances = _instances(compose)
    assert set(servers) == set(instances)
    for name, svc in instances.items():
        argv = shlex.split(_interpolate(svc["command"][-1]))
        assert argv[argv.index("--port") + 1] == servers[name]
        assert argv[argv.index("--host") + 1] == "0.0.0.0"
    bind = re.search(r"^\s*bind\s+\S*:(\d+)", cfg, re.M)
    assert bind and any(p.endswith(f":{bind[1]}") for p in services["haproxy"]["ports"])
    assert re.search(r"option httpchk GET /health/ready", cfg)
    dockerfile = (ROOT / services["haproxy"]["build"] / "Dockerfile").read_text()
    assert re.search(r"^FROM debian:", dockerfile, re.M)
    assert re.search(r"apt-get install .*\bhaproxy\b", dockerfile)
