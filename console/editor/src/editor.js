// The Actions code editor of the admin console (idp/templates/console/actions_edit.html).
//
// It enhances the page's plain <textarea data-editor="python"> into CodeMirror 6 with Python
// highlighting and completion of the trigger's `event` and `api` members, read from the
// trigger's published schema (GET /api/v2/actions/triggers: event fields, the sample event,
// api method names) that the page puts in <script type="application/json" id="action-schema">.
// The textarea stays the form field: the editor writes its text back on every change, so the
// form posts the same way with or without this script.
//
// The console's CSP allows styles from 'self' only. CodeMirror injects its styles with a
// <style> element when mounted in a document (refused by that CSP) but with a constructed
// stylesheet (adoptedStyleSheets, which the CSP does not govern) in a shadow root: the editor
// lives in a shadow root for that reason.
//
// Built with esbuild into idp/static/console/editor.js (`make console-assets`).

import { python, pythonLanguage } from "@codemirror/lang-python";
import { indentUnit } from "@codemirror/language";
import { EditorView, basicSetup } from "codemirror";

// The entry point's parameters (Python's own completions add the module's names).
const TOP = ["event", "api"];

/** The members of `event` at `path` (["user"] for `event.user.`), from the sample event. */
export function eventMembers(schema, path) {
  let node = schema.event.sample;
  for (const key of path) {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return [];
    node = node[key];
  }
  if (path.length === 0) {
    const fields = new Set([...schema.event.fields, ...Object.keys(node || {})]);
    return [...fields].sort().map((name) => member(name, (node || {})[name]));
  }
  if (node === null || typeof node !== "object" || Array.isArray(node)) return [];
  return Object.keys(node)
    .sort()
    .map((name) => member(name, node[name]));
}

/** The members of `api` at `path` (["access_token"] for `api.access_token.`). */
export function apiMembers(schema, path) {
  const found = new Map();
  for (const method of schema.api) {
    const parts = method.split(".");
    if (parts.length <= path.length) continue;
    if (!path.every((p, i) => parts[i] === p)) continue;
    const name = parts[path.length];
    const leaf = parts.length === path.length + 1;
    found.set(name, {
      label: name,
      type: leaf ? "method" : "namespace",
      detail: leaf ? `api.${method}(…)` : "",
    });
  }
  return [...found.values()].sort((a, b) => a.label.localeCompare(b.label));
}

function member(name, sample) {
  let detail = "";
  if (Array.isArray(sample)) detail = "list";
  else if (sample !== null && typeof sample === "object") detail = "dict";
  else if (sample !== undefined) detail = JSON.stringify(sample).slice(0, 40);
  return { label: name, type: "property", detail };
}

/** A CodeMirror completion source over `event.` and `api.` chains. */
export function schemaCompletions(schema) {
  return (context) => {
    const chain = context.matchBefore(/[A-Za-z_][\w.]*$/);
    if (chain === null) return null;
    const parts = chain.text.split(".");
    const typed = parts.pop();
    const from = chain.to - typed.length;
    if (parts.length === 0) {
      if (typed === "" && !context.explicit) return null;
      return { from, options: TOP.map((label) => ({ label, type: "variable" })) };
    }
    const [root, ...path] = parts;
    let options = [];
    if (root === "event") options = eventMembers(schema, path);
    else if (root === "api") options = apiMembers(schema, path);
    if (options.length === 0) return null;
    return { from, options, validFor: /^\w*$/ };
  };
}

function readSchema() {
  const block = document.getElementById("action-schema");
  if (block === null) return { event: { fields: [], sample: {} }, api: [] };
  return JSON.parse(block.textContent);
}

function enhance(textarea, schema) {
  const host = document.createElement("div");
  host.className = "code-editor";
  textarea.insertAdjacentElement("afterend", host);
  const shadow = host.attachShadow({ mode: "open" });
  const label = document.querySelector(`label[for="${textarea.id}"]`);
  const view = new EditorView({
    doc: textarea.value,
    root: shadow,
    parent: shadow,
    extensions: [
      basicSetup,
      python(),
      indentUnit.of("    "), // PEP 8, and what the trigger templates use
      pythonLanguage.data.of({ autocomplete: schemaCompletions(schema) }),
      EditorView.contentAttributes.of({
        "aria-label": label ? label.textContent.trim() : "Code",
      }),
      EditorView.theme({
        "&": { fontSize: "0.9rem", border: "1px solid #767676", background: "#fff" },
        "&.cm-focused": { outline: "3px solid #1a56db" },
        ".cm-scroller": { fontFamily: "ui-monospace, Menlo, Consolas, monospace" },
        ".cm-content, .cm-gutter": { minHeight: "18rem" },
      }),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) textarea.value = update.state.doc.toString();
      }),
    ],
  });
  textarea.hidden = true;
  if (label !== null) label.addEventListener("click", () => view.focus());
  return view;
}

function start() {
  const schema = readSchema();
  for (const textarea of document.querySelectorAll('textarea[data-editor="python"]')) {
    enhance(textarea, schema);
  }
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
}
