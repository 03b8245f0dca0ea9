"""Every word a person reads on a hosted page goes through the translation layer (idp.i18n) and
has its French (OIDC Core §3.1.2.1 ``ui_locales``); read from the sources, no server.

* Templates (``idp/templates``, not the admin console nor the management API's reference,
  which stay English): with every Jinja construct taken out, no text and no readable attribute
  (``alt``, ``title``, ``placeholder``, ``aria-label``) holds a letter: the words are all
  inside ``{{ _("...") }}``. Every ``_("...")`` with a literal has a French entry.
* Views (the login's, the account's, MFA, connections): every message a view hands a page
  or a mail is a literal the catalogue has: the arguments of ``gettext`` and ``N_`` (the
  marker of a message a page translates later), the page's words given to ``error_page``,
  ``fail`` and ``failed`` (shown by the device flow's page), an upstream connection's
  ``UpstreamError``, and
  the ``error``, ``notice``, ``title``, ``description`` and ``problems`` given to a page.
* The catalogue's French keeps each message's placeholders.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jinja2 import Environment, nodes

from idp.i18n import fr

ROOT = Path(__file__).resolve().parents[2] / "idp"
TEMPLATES = ROOT / "templates"
ENGLISH_ONLY = {"management_docs.html"}  # the management API's reference, for developers
PAGE_KEYWORDS = {"error", "notice", "title", "description", "problems"}
MESSAGE_CALLS = {"gettext", "N_", "_"}
# the arguments that are words for the person, by position
MESSAGE_ARGUMENTS = {
    "error_page": (0, 1), "fail": (2,), "failed": (3,), "_refused": (2,), "UpstreamError": (1,)
}  # fmt: skip
NOT_PAGES = {"make", "record"}  # segno's error correction level, the audit log's own words
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
READABLE_ATTRIBUTES = {"alt", "title", "placeholder", "aria-label"}


def _user_templates() -> list[Path]:
    return sorted(
        p
        for p in TEMPLATES.rglob("*.html")
        if "console" not in p.relative_to(TEMPLATES).parts and p.name not in ENGLISH_ONLY
    )


class _Words(HTMLParser):
    """The text and readable attribute values of an HTML fragment, scripts left out."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.found += [v for k, v in attrs if k in READABLE_ATTRIBUTES and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.found.append(data)


def _literal_words(source: str) -> list[str]:
    parser = _Words()
    parser.feed(JINJA.sub("", source))
    parser.close()
    return [w.strip() for w in parser.found if re.search(r"[A-Za-z]", w)]


@pytest.mark.parametrize("path", _user_templates(), ids=lambda p: p.name)
def test_no_english_outside_the_translate_call(path: Path) -> None:
    assert _literal_words(path.read_text()) == [], f"{path.name}: text not inside _()"


def test_the_guard_sees_literal_text() -> None:
    """The check above fails on an untranslated word, in text or in a readable attribute."""
    assert _literal_words('<p>{{ _("Hi") }}</p><p>Signed in at {{ t }}</p>') == ["Signed in at"]
    assert _literal_words('<img alt="Logo" src="{{ x }}">{% if a %}<br>{% endif %}') == ["Logo"]
    assert _literal_words('<script>var a = "b";</script>{# a comment #}') == []


def _template_messages() -> Iterator[tuple[str, str]]:
    env = Environment(autoescape=True)
    for path in _user_templates():
        tree = env.parse(path.read_text())
        for call in tree.find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name == "_" and call.args:
                first = call.args[0]
                if isinstance(first, nodes.Const) and isinstance(first.value, str):
                    yield path.name, first.value


def test_every_template_message_has_its_french() -> None:
    found = list(_template_messages())
    assert len(found) > 150  # the walk reads the templates
    missing = sorted({f"{name}: {text!r}" for name, text in found if text not in fr.MESSAGES})
    assert missing == []


def _python_files() -> list[Path]:
    views = [ROOT / "__init__.py"]
    for package in ("flows", "mfa", "connections", "consent"):
        views += sorted((ROOT / package).rglob("*.py"))
    return views


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _strings(node: ast.expr) -> Iterator[str]:
    """The literal strings of an argument (a list of them too, for ``problems``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.List | ast.Tuple):
        for item in node.elts:
            yield from _strings(item)


def _view_messages(tree: ast.AST) -> Iterator[str]:
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        name = _name(call.func)
        if name in MESSAGE_CALLS and call.args:
            yield from _strings(call.args[0])
        for position in MESSAGE_ARGUMENTS.get(name, ()):
            if len(call.args) > position:
                yield from _strings(call.args[position])
        for keyword in call.keywords:
            if keyword.arg in PAGE_KEYWORDS and name not in NOT_PAGES:
                yield from _strings(keyword.value)


def test_every_view_message_has_its_french() -> None:
    missing, seen = [], 0
    for path in _python_files():
        for text in _view_messages(ast.parse(path.read_text())):
            seen += 1
            if text not in fr.MESSAGES:
                missing.append(f"{path.relative_to(ROOT)}: {text!r}")
    assert seen > 60  # the walk reads the views
    assert missing == []


def test_the_french_keeps_the_placeholders() -> None:
    def names(text: str) -> set[str]:
        return {field for _, field, _, _ in string.Formatter().parse(text) if field}

    wrong = [key for key, french in fr.MESSAGES.items() if names(key) != names(french)]
    assert wrong == []


def test_no_message_is_in_two_modules() -> None:
    """The French package merges its modules: a key in two would silently lose one."""
    assert sum(len(part) for part in fr.PARTS) == len(fr.MESSAGES)


@pytest.mark.parametrize("error", [400, 403, 404, 405, 413, 415, 429])
def test_werkzeug_errors_have_their_french(error: int) -> None:
    """The HTTP error page (idp/__init__.py) shows werkzeug's name and description."""
    from werkzeug.exceptions import default_exceptions

    exc = default_exceptions[error]()
    assert exc.name in fr.MESSAGES and exc.description in fr.MESSAGES


def test_scripts_show_only_the_pages_words() -> None:
    """The pages' scripts write no English of their own: webauthn.js shows the messages its
    page carries (mfa/_webauthn_status.html), translated like the rest of the page."""
    shown = re.compile(r"""(textContent|innerText|innerHTML)\s*=\s*["'`]|alert\(\s*["'`]""")
    scripts = sorted((ROOT / "static").glob("*.js"))
    assert scripts and not [p.name for p in scripts if shown.search(p.read_text())]
    assert "data-follow" in (TEMPLATES / "mfa" / "_webauthn_status.html").read_text()
