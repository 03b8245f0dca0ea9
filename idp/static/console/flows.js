/* Flows: drag and drop over the chain (native HTML5 drag and drop, no library).
 *
 * Dragging a library action onto a gap of the chain adds it there; dragging a step moves it.
 * Each drop posts the same form the buttons post (one single-binding operation of the
 * management API, with the CSRF token and the binding's ETag), then shows the page the
 * console answers: the updated chain, or the refusal (a stale chain is a 412 page). The
 * buttons stay: they are the keyboard and no-script path.
 */
(function () {
  "use strict";
  var flow = document.querySelector(".flow");
  var chain = document.getElementById("chain");
  var token = document.querySelector("input[name=csrf_token]");
  if (!flow || !chain || !token) { return; }
  flow.classList.add("dnd");
  var help = document.getElementById("dnd-help");
  if (help) { help.classList.add("shown"); }

  var dragged = null; // {kind: "action"|"binding", id, position, url, etag}

  function post(url, fields) {
    var body = new FormData();
    body.append("csrf_token", token.value);
    Object.keys(fields).forEach(function (k) { body.append(k, fields[k]); });
    return fetch(url, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (resp) {
        if (resp.ok) { window.location.assign(resp.url); return null; }
        return resp.text().then(function (html) { show(html); });
      })
      .catch(function () { show(null); });
  }

  /* A refusal replaces the page's content, as the form's own answer would. */
  function show(html) {
    var main = document.querySelector("main");
    var doc = html ? new DOMParser().parseFromString(html, "text/html") : null;
    var other = doc && doc.querySelector("main");
    if (other) {
      main.innerHTML = other.innerHTML;
    } else {
      main.insertAdjacentHTML("afterbegin", '<p class="error" role="alert"></p>');
      main.firstChild.textContent = "The change could not be sent. Reload the page and try again.";
    }
    var focus = main.querySelector("h1");
    if (focus) { focus.setAttribute("tabindex", "-1"); focus.focus(); }
  }

  function start(event, info, element) {
    dragged = info;
    element.classList.add("moving");
    flow.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", info.id);
  }

  function end(element) {
    element.classList.remove("moving");
    flow.classList.remove("dragging");
    Array.prototype.forEach.call(chain.querySelectorAll(".slot.over"), function (s) {
      s.classList.remove("over");
    });
  }

  Array.prototype.forEach.call(chain.querySelectorAll(".card[draggable=true]"), function (card) {
    card.addEventListener("dragstart", function (event) {
      start(event, { kind: "binding", id: card.dataset.binding, url: card.dataset.move,
                     etag: card.dataset.etag, position: Number(card.dataset.position) }, card);
    });
    card.addEventListener("dragend", function () { end(card); dragged = null; });
  });

  Array.prototype.forEach.call(document.querySelectorAll(".library [draggable=true]"),
    function (item) {
      item.addEventListener("dragstart", function (event) {
        start(event, { kind: "action", id: item.dataset.action }, item);
      });
      item.addEventListener("dragend", function () { end(item); dragged = null; });
    });

  Array.prototype.forEach.call(chain.querySelectorAll(".slot"), function (slot) {
    slot.addEventListener("dragover", function (event) {
      if (!dragged) { return; }
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      slot.classList.add("over");
    });
    slot.addEventListener("dragleave", function () { slot.classList.remove("over"); });
    slot.addEventListener("drop", function (event) {
      event.preventDefault();
      if (!dragged) { return; }
      var gap = Number(slot.dataset.position); // before the step now at this index
      var info = dragged;
      dragged = null;
      if (info.kind === "action") {
        post(chain.dataset.add, { action: info.id, position: String(gap) });
        return;
      }
      // the step leaves its place first: a gap below it is one index lower once it moves
      var target = gap > info.position ? gap - 1 : gap;
      if (target === info.position) { return; }
      post(info.url, { etag: info.etag, position: String(target) });
    });
  });
}());
