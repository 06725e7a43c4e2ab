// Chromium's DevTools virtual authenticator (CDP domain WebAuthn): a
// platform authenticator with resident keys and user verification that
// answers create()/get() without any UI.
//
// What the tests rely on (checked with Debian's Chromium 156, headless):
// - the authenticator belongs to the page (tab) whose CDP session added it, and
//   survives that page's navigations, cross-origin ones included (app origin →
//   the server's hosted login page → back to the app);
// - another page, even in the same context, does not see it: a page with its own
//   empty authenticator gets NotAllowedError, and credentials can be carried over
//   with raw() (WebAuthn.getCredentials) and addCredential(); a page with no
//   virtual authenticator at all gets no answer (the request's `timeout` is not
//   honoured; seen once: nothing for two minutes, then the tab was closed), so
//   add one to every page that runs a modal ceremony;
// - `automaticPresenceSimulation: true` answers user presence at once, and
//   `isUserVerified: true` sets UV, so `userVerification: "required"` passes;
// - a conditional request (`mediation: "conditional"`, passkey autofill) is
//   answered at once with a matching discoverable credential, without any
//   click: a login page that starts one logs in by itself;
//   PublicKeyCredential.isConditionalMediationAvailable() resolves true;
// - a request whose allowCredentials match nothing fails with NotAllowedError
//   at once;
// - credential IDs and user handles come back as standard base64 (CDP `binary`),
//   not base64url; the credential's signCount goes up by one per assertion.

import { WAIT_MS, withTimeout } from './util.mjs';

export const AUTHENTICATOR_OPTIONS = Object.freeze({
  protocol: 'ctap2',
  transport: 'internal',
  hasResidentKey: true,
  hasUserVerification: true,
  isUserVerified: true,
  automaticPresenceSimulation: true,
});

/** Standard base64 (CDP's `binary`) → base64url without padding (WebAuthn JSON). */
export const b64ToB64url = (s) => Buffer.from(s, 'base64').toString('base64url');

/** base64url (WebAuthn JSON) → standard base64 (CDP's `binary`). */
export const b64urlToB64 = (s) => Buffer.from(s, 'base64url').toString('base64');

function summary(c) {
  return {
    credentialId: b64ToB64url(c.credentialId),
    rpId: c.rpId,
    isResidentCredential: c.isResidentCredential,
    userHandle: c.userHandle ? b64ToB64url(c.userHandle) : null,
    signCount: c.signCount,
    userName: c.userName,
  };
}

/**
 * Adds a virtual authenticator to `page` (through a CDP session of
 * `context`). Returns helpers: `credentials()` (summaries, base64url IDs),
 * `raw()` (CDP credentials, for addCredential elsewhere), `events` (added /
 * asserted, in order), `describe()` for diagnostics.
 */
export async function addVirtualAuthenticator(context, page, options = {}) {
  const cdp = await context.newCDPSession(page);
  const send = (method, params) => withTimeout(cdp.send(method, params), WAIT_MS, `CDP ${method}`);
  await send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await send('WebAuthn.addVirtualAuthenticator', {
    options: { ...AUTHENTICATOR_OPTIONS, ...options },
  });
  /** @type {{event:string, at:string, credentialId:string, rpId?:string, signCount:number, userHandle:string|null}[]} */
  const events = [];
  cdp.on('WebAuthn.credentialAdded', (e) => events.push({ event: 'added', at: new Date().toISOString(), ...summary(e.credential) }));
  cdp.on('WebAuthn.credentialAsserted', (e) => events.push({ event: 'asserted', at: new Date().toISOString(), ...summary(e.credential) }));

  const raw = async () => (await send('WebAuthn.getCredentials', { authenticatorId })).credentials;
  const credentials = async () => (await raw()).map(summary);
  return {
    cdp,
    authenticatorId,
    events,
    raw,
    credentials,
    addCredential: (credential) => send('WebAuthn.addCredential', { authenticatorId, credential }),
    describe: async () => {
      let creds;
      try {
        creds = JSON.stringify(await credentials(), null, 2);
      } catch (e) {
        creds = `(could not read: ${e.message})`;
      }
      return `authenticator ${authenticatorId}\ncredentials: ${creds}\nevents:\n${events.map((e) => JSON.stringify(e)).join('\n') || '(none)'}`;
    },
  };
}
