// A login's second step with a WebAuthn key: use one of the user's keys
// (data-mode="get"), or create the user's first (data-mode="create"). The
// result is posted with the page's login transaction.
(function () {
  "use strict";
  var button = document.getElementById("key-button");
  var form = document.getElementById("key-form");
  if (!button || !form) return;
  var error = document.getElementById("key-error");
  var creating = button.getAttribute("data-mode") === "create";
  var kind = button.getAttribute("data-kind");

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
  }

  if (!window.PublicKeyCredential) {
    button.disabled = true;
    fail("This browser cannot use security keys or device sign-in. Choose another method.");
    return;
  }

  function fromB64url(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }

  function toB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: fromB64url(c.id) });
    });
  }

  function publicKey(o) {
    var pk = Object.assign({}, o, { challenge: fromB64url(o.challenge) });
    if (o.user) pk.user = Object.assign({}, o.user, { id: fromB64url(o.user.id) });
    if (o.allowCredentials) pk.allowCredentials = withIds(o.allowCredentials);
    if (o.excludeCredentials) pk.excludeCredentials = withIds(o.excludeCredentials);
    return pk;
  }

  function asJSON(c) {
    if (typeof c.toJSON === "function") return c.toJSON();
    var r = c.response;
    var response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      response.userHandle = r.userHandle ? toB64url(r.userHandle) : null;
    }
    return {
      id: c.id,
      rawId: toB64url(c.rawId),
      type: c.type,
      authenticatorAttachment: c.authenticatorAttachment || undefined,
      response: response,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
    };
  }

  button.addEventListener("click", function () {
    error.hidden = true;
    var body = { tx: form.elements.tx.value };
    body[creating ? "factor" : "kind"] = kind;
    fetch(creating ? "/login/mfa/enroll/key/challenge" : "/login/mfa/key/challenge", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(body).toString(),
    })
      .then(function (r) {
        if (!r.ok) throw new Error("challenge refused");
        return r.json();
      })
      .then(function (ch) {
        var options = { publicKey: publicKey(ch.options) };
        var ceremony = creating ? navigator.credentials.create(options) : navigator.credentials.get(options);
        return ceremony.then(function (c) {
          form.elements.auth_session.value = ch.auth_session;
          if (form.elements.method_id) form.elements.method_id.value = ch.method_id;
          form.elements.credential.value = JSON.stringify(asJSON(c));
          form.submit();
        });
      })
      .catch(function (err) {
        if (window.console) console.warn("WebAuthn key " + (creating ? "creation" : "use") + " failed:", err && err.name, err && err.message);
        fail(creating ? "No key was added. Try again, or choose another method." : "The key was not used. Try again, or choose another method.");
      });
  });
})();
