"""The Actions code editor's bundle (idp/static/console/editor.js): the committed file is what
``make console-assets`` builds from console/editor/src with the pinned esbuild and CodeMirror,
byte for byte; and its completion of ``event.`` and ``api.`` follows the published trigger
schema (run with Node against the source, through CodeMirror's own completion context)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from idp.actions import triggers

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "idp" / "static" / "console" / "editor.js"
SOURCE = ROOT / "console" / "editor" / "src" / "editor.js"
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"

needs_node_modules = pytest.mark.skipif(
    not ESBUILD.exists() or shutil.which("node") is None or shutil.which("make") is None,
    reason="node_modules is absent (npm ci installs esbuild and CodeMirror): cannot rebuild",
)


@needs_node_modules
def test_the_committed_bundle_is_what_its_sources_build(tmp_path: Path) -> None:
    rebuilt = tmp_path / "editor.js"
    # -o: never reinstall node_modules from here (the tree is shared); build only.
    subprocess.run(
        ["make", "-s", "-o", "node_modules/.installed", "console-assets",
         f"EDITOR_BUNDLE={rebuilt}"],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert rebuilt.read_bytes() == BUNDLE.read_bytes(), (
        "idp/static/console/editor.js differs from its sources: run `make console-assets` "
        "and commit the result"
    )
    text = BUNDLE.read_text()
    assert 300_000 < len(text) < 800_000  # CodeMirror's basic setup and Python, minified
    assert "\n//# sourceMappingURL" not in text and "/work/" not in text  # nothing local


COMPLETE = """
import { CompletionContext } from "@codemirror/autocomplete";
import { EditorState } from "@codemirror/state";
import { schemaCompletions } from "./console/editor/src/editor.js";
const [schema, ...lines] = JSON.parse(process.argv[1]);
const source = schemaCompletions(schema);
const out = lines.map((doc) => {
  const found = source(new CompletionContext(EditorState.create({ doc }), doc.length, false));
  return found && { from: found.from, labels: found.options.map((o) => o.label) };
});
console.log(JSON.stringify(out));
"""


def complete(trigger_id: str, *lines: str) -> list[Any]:
    schema = triggers.schema(triggers.get(trigger_id))
    ran = subprocess.run(
        ["node", "--input-type=module", "-e", COMPLETE, json.dumps([schema, *lines])],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    result: list[Any] = json.loads(ran.stdout)
    return result


@needs_node_modules
def test_event_and_api_members_complete_from_the_trigger_schema() -> None:
    user, claim, top, api, other = complete(
        "post-login",
        "    x = event.user.em",
        "    api.access_token.set",
        "    event.",
        "    api.",
        "    print(x.",
    )
    assert user == {"from": len("    x = event.user."), "labels": [
        "app_metadata", "created_at", "email", "email_verified", "identities", "logins_count",
        "name", "user_id", "user_metadata"]}  # fmt: skip
    assert claim and claim["labels"] == ["add_scope", "remove_scope", "set_custom_claim"]
    assert top and {"user", "client", "secrets", "configuration", "stats"} <= set(top["labels"])
    assert api and {"access", "access_token", "id_token", "redirect", "http", "cache"} <= set(
        api["labels"]
    )
    assert other is None  # not an event/api chain: Python's own completions only
    # another trigger publishes other members
    (cx_api,) = complete("credentials-exchange", "    api.")
    assert cx_api and "redirect" not in cx_api["labels"] and "access_token" in cx_api["labels"]


def test_the_console_templates_and_the_bundle_ship_in_the_package() -> None:
    """A wheel (the Docker image installs one) carries the files pyproject's package-data globs
    match, as setuptools globs them from the package's folder."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package = ROOT / "idp"
    shipped = {
        path for pattern in config["tool"]["setuptools"]["package-data"]["idp"]
        for path in package.glob(pattern)
    }  # fmt: skip
    wanted = {BUNDLE, *package.glob("templates/console/*.html"), *package.glob("static/console/*")}
    assert BUNDLE in wanted and not wanted - shipped, sorted(map(str, wanted - shipped))
