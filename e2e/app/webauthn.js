// WebAuthn in the test app's pages (served at /webauthn.js): turns the JSON
// options a server sends (base64url strings for binary fields, as in
// `authn_params_public_key`) into what navigator.credentials.create()/get()
// take, runs the ceremony, and returns the credential as JSON
// (PublicKeyCredential.toJSON(): base64url strings again), which is what the
// server's verify/token endpoints expect as `authn_response`.
//
// Every ceremony resolves to {ok: true, value} or {ok: false, error, message,
// step} (a DOMException's name, e.g. NotAllowedError, SecurityError), and is
// recorded in e2eWebAuthn.log for diagnostics.
(function () {
  'use strict';

  const log = [];

  function fromB64url(s) {
    if (typeof s !== 'string') throw new TypeError('expected a base64url string, got ' + JSON.stringify(s));
    let b64 = s.replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) b64 += '=';
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }

  function toB64url(buf) {
    const bytes = new Uint8Array(buf);
    let bin = '';
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  const descriptors = (list) => (list || []).map((c) => Object.assign({}, c, { id: fromB64url(c.id) }));

  /** PublicKeyCredentialCreationOptionsJSON → PublicKeyCredentialCreationOptions. */
  function creationOptions(json) {
    if (!json || typeof json !== 'object') throw new TypeError('no creation options: ' + JSON.stringify(json));
    const o = Object.assign({}, json);
    o.challenge = fromB64url(json.challenge);
    o.user = Object.assign({}, json.user, { id: fromB64url(json.user && json.user.id) });
    if (json.excludeCredentials) o.excludeCredentials = descriptors(json.excludeCredentials);
    return o;
  }

  /** PublicKeyCredentialRequestOptionsJSON → PublicKeyCredentialRequestOptions. */
  function requestOptions(json) {
    if (!json || typeof json !== 'object') throw new TypeError('no request options: ' + JSON.stringify(json));
    const o = Object.assign({}, json);
    o.challenge = fromB64url(json.challenge);
    if (json.allowCredentials) o.allowCredentials = descriptors(json.allowCredentials);
    return o;
  }

  function asJSON(credential) {
    if (typeof credential.toJSON !== 'function') {
      throw new Error('PublicKeyCredential.toJSON() is not available in this browser');
    }
    return credential.toJSON();
  }

  async function ceremony(kind, json, convert, call) {
    const entry = { kind, at: new Date().toISOString(), options: json, result: null, error: null };
    log.push(entry);
    let step = 'options';
    try {
      const publicKey = convert(json);
      step = kind;
      const credential = await call(publicKey);
      if (!credential) throw new Error('navigator.credentials.' + kind + '() returned null');
      step = 'toJSON';
      const value = asJSON(credential);
      entry.result = value;
      return { ok: true, value };
    } catch (e) {
      entry.error = step + ': ' + ((e && e.name) || 'Error') + ': ' + ((e && e.message) || e);
      return { ok: false, step, error: (e && e.name) || 'Error', message: (e && e.message) || String(e) };
    }
  }

  window.e2eWebAuthn = {
    fromB64url,
    toB64url,
    creationOptions,
    requestOptions,
    log,
    /** navigator.credentials.create({publicKey}) from the server's JSON options → credential.toJSON(). */
    create: (json) => ceremony('create', json, creationOptions, (publicKey) => navigator.credentials.create({ publicKey })),
    /** navigator.credentials.get({publicKey}) from the server's JSON options → credential.toJSON(). */
    get: (json) => ceremony('get', json, requestOptions, (publicKey) => navigator.credentials.get({ publicKey })),
  };
})();
