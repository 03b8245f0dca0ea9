// The web authenticator's service worker (idp/mfa/webpush_views.py): a Web Push message
// (RFC 8030; the browser has decrypted it, RFC 8291) becomes a notification showing the
// sign-in request and the numbers to pick from; a click opens the authenticator, where the
// number is picked and the decision signed. The words come from the server, in the language
// of the sign-in page.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = null;
  try { data = event.data ? event.data.json() : null; } catch (e) { data = null; }
  if (!data || data.type !== "login-approval") return;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) client.postMessage(data);
    await self.registration.showNotification(data.title, {
      body: data.body + "\n" + data.numbers.join(" · "),
      tag: data.challenge,
      requireInteraction: true,
      icon: "icon.svg",
      data: { challenge: data.challenge },
    });
  })());
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil((async () => {
    const scope = self.registration.scope;
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const open = windows.find((client) => client.url.startsWith(scope));
    if (open) {
      open.postMessage({ type: "login-approval" });
      return open.focus();
    }
    return self.clients.openWindow(scope);
  })());
});
