// The console's live log (/admin/logs/live): every few seconds, ask /admin/logs/tail for the
// events after the newest one shown (an HTML fragment of table rows, newest first, rendered
// and escaped by the server; X-Last-Log-Id is the newest id) and put them on top. Without
// this script the page's "Newer events" link does the same by hand. No inline script: the
// console's CSP allows scripts from 'self' only.
const POLL_MS = 4000;

const rows = document.getElementById("log-rows");
const status = document.getElementById("tail-status");

function start() {
  if (!rows || !rows.dataset.tail) return;
  let after = rows.dataset.after || "0";
  let paused = false;
  let timer = 0;

  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.textContent = "Pause";
  toggle.setAttribute("aria-pressed", "false");
  toggle.addEventListener("click", () => {
    paused = !paused;
    toggle.textContent = paused ? "Resume" : "Pause";
    toggle.setAttribute("aria-pressed", String(paused));
    status.textContent = paused ? "Paused." : "Following new events.";
    if (!paused) poll();
  });
  status.before(toggle);
  status.textContent = "Following new events.";

  async function poll() {
    window.clearTimeout(timer);
    if (paused) return;
    const url = new URL(rows.dataset.tail, window.location.href);
    url.searchParams.set("after", after);
    let resp;
    try {
      // a signed-out console answers with a redirect to the login: stop, don't follow it
      resp = await fetch(url, { credentials: "same-origin", redirect: "error",
                                headers: { Accept: "text/html" } });
    } catch {
      status.textContent = "Stopped: the console session ended or the server is unreachable. Reload the page.";
      return;
    }
    if (resp.status === 401) {
      // polls do not keep the console session alive: it ended when idle
      status.textContent = "Stopped: your console session ended. Reload the page to sign in again.";
      return;
    }
    if (!resp.ok) {
      status.textContent = `Stopped: the server answered ${resp.status}. Reload the page.`;
      return;
    }
    const html = (await resp.text()).trim();
    after = resp.headers.get("X-Last-Log-Id") || after;
    if (html) {
      const holder = document.createElement("tbody");
      holder.innerHTML = html;
      const fresh = Array.from(holder.querySelectorAll("tr"));
      for (const old of rows.querySelectorAll("tr.fresh")) old.classList.remove("fresh");
      for (const row of fresh) row.classList.add("fresh");
      rows.prepend(...fresh);
      status.textContent = `${fresh.length} new event${fresh.length === 1 ? "" : "s"}.`;
    }
    timer = window.setTimeout(poll, POLL_MS);
  }

  timer = window.setTimeout(poll, POLL_MS);
}

start();
