// Progressive enrollment: create a passkey right after a password login.
(function () {
  "use strict";
  var button = document.getElementById("passkey-create");
  var form = document.getElementById("passkey-form");
  if (!button || !form) return;
  if (!window.PublicKeyCredential) {
    document.getElementById("passkey-continue").submit();
    return;
  }
  var tx = form.elements.tx.value;

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

  function creationOptions(o) {
    var pk = Object.assign({}, o);
    pk.challenge = fromB64url(o.challenge);
    pk.user = Object.assign({}, o.user, { id: fromB64url(o.user.id) });
    if (o.excludeCredentials) {
      pk.excludeCredentials = o.excludeCredentials.map(function (c) {
        return Object.assign({}, c, { id: fromB64url(c.id) });
      });
    }
    return pk;
  }

  function asJSON(c) {
    if (typeof c.toJSON === "function") return c.toJSON();
    return {
      id: c.id,
      rawId: toB64url(c.rawId),
      type: c.type,
      authenticatorAttachment: c.authenticatorAttachment || undefined,
      response: {
        clientDataJSON: toB64url(c.response.clientDataJSON),
        attestationObject: toB64url(c.response.attestationObject),
        transports: c.response.getTransports ? c.response.getTransports() : [],
      },
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
    };
  }

  button.addEventListener("click", function () {
    fetch("/login/passkey/create/challenge", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ tx: tx }).toString(),
    })
      .then(function (r) {
        if (!r.ok) throw new Error("challenge refused");
        return r.json();
      })
      .then(function (ch) {
        return navigator.credentials.create({ publicKey: creationOptions(ch.options) }).then(function (c) {
          form.elements.auth_session.value = ch.auth_session;
          form.elements.credential.value = JSON.stringify(asJSON(c));
          form.submit();
        });
      })
      .catch(function () {
        var p = document.getElementById("passkey-error");
        p.textContent = "No passkey was created. Try again, or continue without one.";
        p.hidden = false;
      });
  });
})();
