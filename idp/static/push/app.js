// The web authenticator (idp/mfa/webpush_views.py). The same device protocol as
// idp-authenticator (idp/mfa/push.py): a P-256 key, made here by WebCrypto as non-extractable
// and kept in IndexedDB; ES256 device tokens (RFC 7519) with iss = the key's RFC 7638
// thumbprint; decisions signed as compact JWS (RFC 7515). Enrolment adds the browser's push
// subscription (RFC 8030, keys for RFC 8291), made with the server's VAPID key (RFC 8292).
// Every word shown comes from the page (data-* of #messages), translated like the page.
"use strict";
(() => {
  const root = document.getElementById("authenticator");
  const words = document.getElementById("messages").dataset;
  const status = document.getElementById("status");
  const issuer = root.dataset.issuer;
  const utf8 = new TextEncoder();
  let device = null;

  const b64url = (bytes) =>
    btoa(String.fromCharCode(...new Uint8Array(bytes)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const unb64url = (text) =>
    Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const show = (message, state) => {
    status.textContent = message || "";
    if (state) root.dataset.state = state;
  };

  // IndexedDB keeps the CryptoKey object itself: the private key never leaves WebCrypto
  const withStore = (mode, use) => new Promise((resolve, reject) => {
    const opened = indexedDB.open("idp-authenticator", 1);
    opened.onupgradeneeded = () => opened.result.createObjectStore("state");
    opened.onerror = () => reject(opened.error);
    opened.onsuccess = () => {
      const tx = opened.result.transaction("state", mode);
      const req = use(tx.objectStore("state"));
      tx.oncomplete = () => { opened.result.close(); resolve(req.result); };
      tx.onerror = () => reject(tx.error);
    };
  });
  const load = () => withStore("readonly", (s) => s.get(issuer));
  const save = (value) => withStore("readwrite", (s) => s.put(value, issuer));

  async function jws(key, header, payload) {
    const input = b64url(utf8.encode(JSON.stringify(header))) + "." +
      b64url(utf8.encode(JSON.stringify(payload)));
    // WebCrypto's ECDSA signature is r || s, which is what JWS ES256 wants (RFC 7518 §3.4)
    const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, utf8.encode(input));
    return input + "." + b64url(sig);
  }

  const now = () => Math.floor(Date.now() / 1000);

  function deviceToken(dev) {
    const iat = now();
    const jti = b64url(crypto.getRandomValues(new Uint8Array(18)));
    return jws(dev.privateKey, { alg: "ES256", typ: "JWT" },
      { iss: dev.id, aud: dev.issuer, iat, exp: iat + 60, jti });
  }

  async function call(dev, method, path, body, type) {
    const headers = { Accept: "application/json" };
    headers.Authorization = "Bearer " + await deviceToken(dev);
    if (body !== undefined) headers["Content-Type"] = type || "application/json";
    const resp = await fetch(dev.issuer + path, {
      method, headers, body, cache: "no-store", credentials: "omit",
    });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    return { status: resp.status, data };
  }

  function parseLink(link) {
    const text = link.trim();
    if (!text.startsWith("idp-push://enroll?")) return null;
    const query = new URLSearchParams(text.slice(text.indexOf("?") + 1));
    const ticket = query.get("ticket");
    const from = (query.get("issuer") || "").replace(/\/+$/, "");
    return ticket && from ? { ticket, issuer: from } : null;
  }

  // the device's own name for itself on the account page: the browser and the platform
  function deviceName() {
    const hints = navigator.userAgentData;
    if (!hints) return navigator.platform || "";
    const brand = hints.brands.map((b) => b.brand).find((b) => !/not.a.brand/i.test(b));
    return [brand, hints.platform].filter(Boolean).join(" · ");
  }

  async function enrol(link) {
    const parsed = parseLink(link);
    if (!parsed) return show(words.badlink, "error");
    if (parsed.issuer !== issuer) return show(words.mismatch, "error");
    if (Notification.permission !== "granted" &&
        (await Notification.requestPermission()) !== "granted") {
      return show(words.permission, "error");
    }
    const registration = await navigator.serviceWorker.ready;
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: unb64url(root.dataset.vapid),
    });
    const pair = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const exported = await crypto.subtle.exportKey("jwk", pair.publicKey);
    const jwk = { crv: "P-256", kty: "EC", x: exported.x, y: exported.y };  // RFC 7638 order
    const id = b64url(await crypto.subtle.digest("SHA-256", utf8.encode(JSON.stringify(jwk))));
    const candidate = { issuer, id, privateKey: pair.privateKey };
    const body = JSON.stringify({
      ticket: parsed.ticket, jwk, name: deviceName(), webpush: subscription.toJSON(),
    });
    const { status: code, data } = await call(candidate, "POST", "/mfa/push/enroll", body);
    if (code !== 201 || !data || data.device_id !== id) {
      await subscription.unsubscribe().catch(() => undefined);
      return show((data && data.detail) ? words.failed + " (" + data.detail + ")" : words.failed, "error");
    }
    device = candidate;
    await save(device);
    history.replaceState(null, "", location.pathname);  // the ticket is spent: out of the URL
    enrolled();
  }

  function render(items) {
    const list = document.getElementById("list");
    const template = document.getElementById("request-item");
    list.replaceChildren();
    document.getElementById("none").hidden = items.length > 0;
    for (const item of items) {
      const li = template.content.firstElementChild.cloneNode(true);
      li.dataset.challenge = item.id;
      li.querySelector(".who").textContent = [item.app, item.ip].filter(Boolean).join(" · ");
      const numbers = li.querySelector(".numbers");
      for (const n of item.numbers) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "number";
        button.textContent = String(n);
        button.addEventListener("click", () => decide(item, "approve", n));
        numbers.append(button);
      }
      li.querySelector(".deny").addEventListener("click", () => decide(item, "deny", null));
      list.append(li);
    }
  }

  async function refresh() {
    if (!device) return;
    const { status: code, data } = await call(device, "GET", "/mfa/push/pending");
    if (code === 200 && data) {
      render(data.challenges);
      root.dataset.pending = String(data.challenges.length);
    } else {
      show(words.failed, "error");
    }
  }

  async function decide(item, decision, number) {
    const signed = await jws(device.privateKey, { alg: "ES256" },
      { challenge: item.id, nonce: item.nonce, decision, number, iat: now() });
    const { status: code, data } = await call(device, "POST",
      "/mfa/push/respond/" + encodeURIComponent(item.id), signed, "application/jose");
    const outcome = code === 200 && data ? data.status : "failed";
    show(words[outcome] || words.failed, "answered-" + outcome);
    await refresh();
  }

  // A browser may replace its subscription (a new push service token, notifications allowed
  // again): each opening sends the current one, so the server's copy follows it.
  async function renewSubscription() {
    const registration = await navigator.serviceWorker.ready;
    const subscription = await registration.pushManager.getSubscription();
    if (!subscription) return;
    const { status: code } = await call(device, "PUT", "/mfa/push/subscription",
      JSON.stringify(subscription.toJSON()));
    root.dataset.subscription = code === 204 ? "sent" : "refused";
  }

  function enrolled() {
    document.getElementById("enrol").hidden = true;
    document.getElementById("requests").hidden = false;
    show(words.enrolled, "enrolled");
    refresh();
    renewSubscription().catch(() => { root.dataset.subscription = "failed"; });
  }

  async function main() {
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !window.crypto.subtle) {
      return show(words.unsupported, "unsupported");
    }
    await navigator.serviceWorker.register(root.dataset.worker, { scope: root.dataset.scope });
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data && event.data.type === "login-approval") refresh();
    });
    document.getElementById("refresh").addEventListener("click", () => refresh());
    document.getElementById("enrol-form").addEventListener("submit", (event) => {
      event.preventDefault();
      enrol(document.getElementById("ticket").value).catch((e) => show(words.failed + " (" + e + ")", "error"));
    });
    device = (await load()) || null;
    if (device) return enrolled();
    const hash = new URLSearchParams(location.hash.slice(1));
    if (hash.get("ticket")) document.getElementById("ticket").value = hash.get("ticket");
    document.getElementById("enrol").hidden = false;
    root.dataset.state = "ready";
  }

  main().catch((e) => show(words.failed + " (" + e + ")", "error"));
})();
