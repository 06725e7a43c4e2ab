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

  button.addEventListener("click", function () {
    fetch("/login/passkey/create/challenge", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ tx: tx }).toString(),
    })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (r.ok) return body;
          var refused = new Error("challenge refused");
          refused.detail = body.error_description;
          throw refused;
        });
      })
      .then(function (ch) {
        return navigator.credentials.create({ publicKey: latchkeyWebAuthn.publicKey(ch.options) }).then(function (c) {
          form.elements.auth_session.value = ch.auth_session;
          form.elements.credential.value = JSON.stringify(latchkeyWebAuthn.asJSON(c));
          form.submit();
        });
      })
      .catch(function (e) {
        var p = document.getElementById("passkey-error");
        p.textContent = (e && e.detail) || p.getAttribute("data-not-created");
        p.hidden = false;
      });
  });
})();
