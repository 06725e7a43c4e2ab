// A login's second step with a push notification: while the notification
// waits, ask the page's status URL every few seconds (with the page's login
// transaction, as the page's forms post it) and say what happened in the
// status line (a live region). Approved: the "continue" form is posted, and
// the login finishes as with any other answer. Rejected or expired: polling
// stops, and "Send again" and the other methods stay offered. Without this
// script, the "I approved it — continue" button checks once.
(function () {
  "use strict";
  var panel = document.getElementById("push");
  var form = document.getElementById("push-continue");
  var status = document.getElementById("push-status");
  if (!panel || !form || !status) return;
  var state = panel.getAttribute("data-state");
  if (state !== "pending" && state !== "approved") return;

  var INTERVAL_MS = 2000;
  var LONGEST_MS = 6 * 60 * 1000;
  var started = Date.now();
  // What the status line says, in the page's language (see mfa.html).
  function text(name) {
    return panel.getAttribute("data-" + name) || "";
  }
  var done = false;

  function say(text) {
    if (status.textContent !== text) status.textContent = text;
  }

  function stop(text, keepContinue) {
    done = true;
    say(text);
    panel.setAttribute("data-state", "ended");
    if (!keepContinue) form.hidden = true;
    var number = document.getElementById("push-number");
    if (number) number.hidden = true;
  }

  function finish() {
    done = true;
    say(text("signing-in"));
    form.submit();
  }

  function check() {
    if (done) return;
    if (Date.now() - started > LONGEST_MS) {
      stop(text("expired"));
      return;
    }
    fetch("/login/mfa/push/status", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ tx: form.elements.tx.value }).toString(),
    })
      .then(function (r) {
        if (r.status === 400) return { status: "gone" };
        if (!r.ok) return { status: "retry" };
        return r.json();
      })
      .then(function (answer) {
        switch (answer && answer.status) {
          case "approved":
            return finish();
          case "pending":
            break;
          case "rejected":
            return stop(text("rejected"));
          case "expired":
            return stop(text("expired"));
          case "failed":
            return stop(text("failed"));
          case "none":
            return stop(text("none"));
          case "gone":
            return stop(text("gone"));
          default:
            // A failed request: try again at the next tick.
            break;
        }
        window.setTimeout(check, INTERVAL_MS);
      })
      .catch(function () {
        window.setTimeout(check, INTERVAL_MS);
      });
  }

  if (state === "approved") {
    finish();
  } else {
    window.setTimeout(check, INTERVAL_MS);
  }
})();
