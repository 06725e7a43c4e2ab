// Passkey sign-in on the hosted login page: a "Sign in with a passkey"
// button, and passkeys offered in the email field's autofill (conditional
// mediation) where the browser supports it. The assertion is posted with the
// page's login transaction, like the password form.
(function () {
  "use strict";
  var button = document.getElementById("passkey-login");
  var form = document.getElementById("passkey-form");
  if (!button || !form || !window.PublicKeyCredential) {
    if (button) button.hidden = true;
    return;
  }
  var tx = form.elements.tx.value;

  function showError(message) {
    var p = document.getElementById("passkey-error");
    if (p) {
      p.textContent = message;
      p.hidden = false;
    }
  }

  function challenge() {
    return fetch("/login/passkey/challenge", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ tx: tx }).toString(),
    }).then(function (r) {
      if (!r.ok) throw new Error("challenge refused");
      return r.json();
    });
  }

  function signIn(mediation, signal) {
    return challenge().then(function (ch) {
      var opts = { publicKey: latchkeyWebAuthn.publicKey(ch.options) };
      if (mediation) opts.mediation = mediation;
      if (signal) opts.signal = signal;
      return navigator.credentials.get(opts).then(function (credential) {
        if (!credential) throw new Error("no passkey");
        form.elements.auth_session.value = ch.auth_session;
        form.elements.credential.value = JSON.stringify(latchkeyWebAuthn.asJSON(credential));
        form.submit();
      });
    });
  }

  var autofill = null;
  if (typeof PublicKeyCredential.isConditionalMediationAvailable === "function") {
    PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
      if (!ok) return;
      autofill = new AbortController();
      signIn("conditional", autofill.signal).catch(function () {});
    });
  }

  button.addEventListener("click", function () {
    if (autofill) {
      autofill.abort();
      autofill = null;
    }
    signIn(null, null).catch(function (e) {
      if (e && e.name === "AbortError") return;
      var p = document.getElementById("passkey-error");
      showError(p ? p.getAttribute("data-not-used") : "");
    });
  });
})();
