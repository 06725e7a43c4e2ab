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
    fail(error.getAttribute("data-unsupported"));
    return;
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
        var options = { publicKey: latchkeyWebAuthn.publicKey(ch.options) };
        var ceremony = creating ? navigator.credentials.create(options) : navigator.credentials.get(options);
        return ceremony.then(function (c) {
          form.elements.auth_session.value = ch.auth_session;
          if (form.elements.method_id) form.elements.method_id.value = ch.method_id;
          form.elements.credential.value = JSON.stringify(latchkeyWebAuthn.asJSON(c));
          form.submit();
        });
      })
      .catch(function (err) {
        if (window.console) console.warn("WebAuthn key " + (creating ? "creation" : "use") + " failed:", err && err.name, err && err.message);
        fail(error.getAttribute(creating ? "data-not-created" : "data-not-used"));
      });
  });
})();
