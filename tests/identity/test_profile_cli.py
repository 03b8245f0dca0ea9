"""``idp users update|show|list`` with the standard claims, in process through click: the
``--json`` output, the one-line refusals (the identity service's), and ``updated_at``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from idp.cli import main


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("IDP_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("IDP_ARGON2_TIME_COST", "1")
    monkeypatch.delenv("IDP_DATABASE_URL", raising=False)
    runner = CliRunner()

    def run(*args: str, ok: bool = True, as_json: bool = True) -> Any:
        argv = ["--instance", str(tmp_path), *(["--json"] if as_json else []), *args]
        result = runner.invoke(main, argv)
        if not ok:
            assert result.exit_code != 0, result.output
            return result.output
        assert result.exit_code == 0, result.output
        return json.loads(result.output) if as_json else result.output

    run("init")
    run("users", "create", "--email", "ada@example.test", "--password", "long-enough-pw")
    return run


def test_update_show_and_list_carry_the_claims(cli: Any, clock: Any) -> None:
    before = cli("users", "show", "--email", "ada@example.test")
    assert set(before) == {"user_id", "email", "email_verified", "updated_at", "identities"}
    clock.advance(30)
    updated = cli(
        "users", "update", "--email", "ada@example.test", "--given-name", "Ada",
        "--name", "Ada Lovelace", "--birthdate", "1815-12-10", "--zoneinfo", "Europe/London",
        "--locale", "en-GB", "--phone-number", "+442071234567", "--phone-number-verified",
        "--picture", "https://example.test/ada.png",
        "--address-json", '{"locality": "London", "country": "UK"}',
    )  # fmt: skip
    assert updated["changed"] is True
    assert updated["updated_at"] >= before["updated_at"] + 30
    expected = {
        "given_name": "Ada", "name": "Ada Lovelace", "birthdate": "1815-12-10",
        "zoneinfo": "Europe/London", "locale": "en-GB", "phone_number": "+442071234567",
        "phone_number_verified": True, "picture": "https://example.test/ada.png",
        "address": {"locality": "London", "country": "UK"},
    }  # fmt: skip
    assert {k: updated[k] for k in expected} == expected
    shown = cli("users", "show", "--email", updated["user_id"])
    assert shown == {k: v for k, v in updated.items() if k != "changed"}
    listed = cli("users", "list")
    assert listed == [shown]
    # the same values again: nothing changes, updated_at stays
    clock.advance(30)
    again = cli("users", "update", "--email", "ada@example.test", "--given-name", "Ada")
    assert again["changed"] is False and again["updated_at"] == updated["updated_at"]
    # "" removes a claim, '{}' the address
    removed = cli(
        "users", "update", "--email", "ada@example.test", "--given-name", "",
        "--address-json", "{}", "--phone-number", "",
    )  # fmt: skip
    assert not {"given_name", "address", "phone_number", "phone_number_verified"} & set(removed)
    assert removed["name"] == "Ada Lovelace"


def test_text_output(cli: Any) -> None:
    out = cli("users", "update", "--email", "ada@example.test", "--nickname", "ada",
              as_json=False)  # fmt: skip
    assert "nickname: ada" in out
    out = cli("users", "update", "--email", "ada@example.test", "--nickname", "ada",
              as_json=False)  # fmt: skip
    assert "nothing changed" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--birthdate", "1815/12/10"], "birthdate must be YYYY-MM-DD or YYYY"),
        (["--zoneinfo", "Europe/Atlantis"], "zoneinfo must be an IANA time zone"),
        (["--locale", "en US"], "locale must be a BCP 47 language tag"),
        (["--phone-number", "555-0100"], "phone_number must be E.164"),
        (["--website", "file:///etc/passwd"], "website must be an http(s) URL"),
        (["--address-json", '{"planet": "Mars"}'], "address has unknown member(s) planet"),
        (["--address-json", "{not json"], "--address-json is not valid JSON"),
        (["--phone-number-verified"], "phone_number_verified needs a phone_number"),
        ([], "nothing to update"),
    ],
)
def test_refusals_are_one_line_errors(cli: Any, args: list[str], message: str) -> None:
    out = cli("users", "update", "--email", "ada@example.test", *args, ok=False)
    assert out.strip().splitlines() == [f"Error: {out.strip().removeprefix('Error: ')}"]
    assert message in out, out
    shown = cli("users", "show", "--email", "ada@example.test")  # nothing applied:
    assert set(shown) == {"user_id", "email", "email_verified", "updated_at", "identities"}


def test_an_unknown_user_is_an_error(cli: Any) -> None:
    out = cli("users", "update", "--email", "nobody@example.test", "--nickname", "x", ok=False)
    assert "no user" in out
