// WebAuthn between the browser and latchkey's JSON, shared by the login
// pages' scripts (served in front of each): options with base64url fields
// in, credentials as JSON (WebAuthn Level 3 toJSON where the browser has it)
// out.
var latchkeyWebAuthn = (function () {
  "use strict";

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

  return { publicKey: publicKey, asJSON: asJSON };
})();

