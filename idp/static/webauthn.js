/* WebAuthn ceremonies of the hosted pages (loaded from 'self'; the CSP allows no inline script).
 *
 * A form marked data-webauthn="create" or "get" stays hidden unless this browser has WebAuthn.
 * On submit it POSTs to data-options for the options (CSRF token in X-CSRFToken), runs
 * navigator.credentials.create() or get(), puts the credential as JSON (binary fields as
 * base64url, the WebAuthn Level 3 JSON encoding, §5.1 toJSON) into its "credential" input and
 * submits the form normally, so the server answers with an ordinary page or redirect.
 * base64url is converted by hand: parseCreationOptionsFromJSON is not in every browser yet.
 */
(function () {
  "use strict";
  if (window.idpWebAuthnLoaded) { return; }
  window.idpWebAuthnLoaded = true;

  function toBuffer(value) {
    var b64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      return { type: c.type, id: toBuffer(c.id), transports: c.transports };
    });
  }

  function creationOptions(o) {
    o.challenge = toBuffer(o.challenge);
    o.user.id = toBuffer(o.user.id);
    o.excludeCredentials = descriptors(o.excludeCredentials);
    return { publicKey: o };
  }

  function requestOptions(o) {
    o.challenge = toBuffer(o.challenge);
    o.allowCredentials = descriptors(o.allowCredentials);
    return { publicKey: o };
  }

  function serialise(cred) {
    var r = cred.response;
    var out = {
      id: cred.id,
      rawId: toBase64url(cred.rawId),
      type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toBase64url(r.clientDataJSON) }
    };
    if (cred.authenticatorAttachment) { out.authenticatorAttachment = cred.authenticatorAttachment; }
    if (r.attestationObject) {
      out.response.attestationObject = toBase64url(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = toBase64url(r.authenticatorData);
      out.response.signature = toBase64url(r.signature);
      out.response.userHandle = r.userHandle ? toBase64url(r.userHandle) : null;
    }
    return JSON.stringify(out);
  }

  function run(form, status) {
    var create = form.getAttribute("data-webauthn") === "create";
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    status.textContent = status.getAttribute("data-follow");
    fetch(form.getAttribute("data-options"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": form.elements.csrf_token.value, "Accept": "application/json" }
    }).then(function (resp) {
      if (!resp.ok) { throw new Error("options " + resp.status); }
      return resp.json();
    }).then(function (options) {
      return create ? navigator.credentials.create(creationOptions(options))
                    : navigator.credentials.get(requestOptions(options));
    }).then(function (cred) {
      form.elements.credential.value = serialise(cred);
      status.textContent = status.getAttribute("data-checking");
      form.submit();
    }).catch(function (err) {
      button.disabled = false;
      // the page's words (mfa/_webauthn_status.html), in its language
      status.textContent = status.getAttribute(
        (err && err.name === "NotAllowedError") ? "data-cancelled" : "data-failed");
    });
  }

  function init() {
    if (!window.PublicKeyCredential || !navigator.credentials) { return; }
    var forms = document.querySelectorAll("form[data-webauthn]");
    Array.prototype.forEach.call(forms, function (form) {
      var status = form.querySelector("[data-webauthn-status]");
      form.hidden = false;
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        run(form, status);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
