//! A software WebAuthn authenticator for the integration tests, built on
//! 1Password's `passkey` crates, and tests proving that what it produces is
//! accepted (and, when tampered with, refused) by a real relying party
//! (`webauthn-rs`).
//!
//! [`SoftAuthenticator::register`] and [`SoftAuthenticator::authenticate`]
//! play the browser: they take the options JSON a server sends
//! (`PublicKeyCredentialCreationOptions` / `PublicKeyCredentialRequestOptions`
//! in WebAuthn JSON form, base64url for binary members) and return what
//! `PublicKeyCredential.toJSON()` gives in a browser.

use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passkey::authenticator::{
    Authenticator, CredentialStore, DiscoverabilitySupport, StoreInfo, UiHint, UserCheck,
    UserValidationMethod,
};
use passkey::client::{Client, DefaultClientData, WebauthnError as ClientError};
use passkey::crypto::iana::Algorithm;
use passkey::crypto::rust_crypto::RustCryptoBackend;
use passkey::types::Passkey;
use passkey::types::ctap2::make_credential::{
    Options, PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
};
use passkey::types::ctap2::{Aaguid, Ctap2Error, StatusCode};
use passkey::types::webauthn::{
    CredentialCreationOptions, CredentialRequestOptions, PublicKeyCredentialCreationOptions,
    PublicKeyCredentialDescriptor, PublicKeyCredentialRequestOptions,
};
use serde_json::{Map, Value, json};
use url::Url;
#[cfg(test)]
use webauthn_rs::prelude::{
    DiscoverableKey, Passkey as RpPasskey, PublicKeyCredential, RegisterPublicKeyCredential, Uuid,
    WebauthnError,
};
#[cfg(test)]
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// Signature counter of a new credential once it is stored; the attestation
/// itself reports 0. Starting above zero lets [`SoftAuthenticator::roll_back_counter`]
/// go below the last reported value from the very first assertion on.
const COUNTER_START: u32 = 100;

/// A software authenticator with its own credential store. Clones share the
/// store (they are the same authenticator).
///
/// Like the passkey providers of browsers and operating systems, every
/// credential it creates is discoverable and an ES256 (P-256) key, whatever
/// else `pubKeyCredParams` lists first (`webauthn-rs` 0.6 refuses EdDSA
/// credentials); without `-7` in the list, registration fails. Each
/// credential keeps its own signature counter. A new credential replaces one
/// this authenticator holds for the same RP ID and user handle (CTAP2). It
/// reports attachment `platform`, transports `internal` and `hybrid`, AAGUID
/// all zeros and attestation `none`.
#[derive(Clone)]
pub struct SoftAuthenticator {
    store: Store,
    user_verification: bool,
}

impl Default for SoftAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftAuthenticator {
    /// An authenticator that supports user verification and performs it
    /// whenever the relying party asks for it (`required` or `preferred`).
    pub fn new() -> Self {
        Self {
            store: Store::default(),
            user_verification: true,
        }
    }

    /// An authenticator that cannot verify the user: it only tests presence,
    /// so every response carries UV = 0. The client goes ahead even when the
    /// relying party says `userVerification: "required"` (a browser would
    /// refuse first): the decision is left to the relying party, which is
    /// what the tests want to see.
    pub fn without_user_verification() -> Self {
        Self {
            store: Store::default(),
            user_verification: false,
        }
    }

    /// `navigator.credentials.create({ publicKey: options })` from `origin`
    /// (e.g. `http://localhost:3917`; plain `http` is accepted for
    /// `localhost` only, and the origin's host must be the `rp.id` or a
    /// subdomain of it). `options` is `PublicKeyCredentialCreationOptions` in
    /// WebAuthn JSON form, or an object wrapping it in `publicKey` (as
    /// `webauthn-rs` serialises its `CreationChallengeResponse`). Members the
    /// `passkey` crates do not know are ignored.
    ///
    /// Returns `PublicKeyCredential.toJSON()`: `id`, `rawId`, `type`,
    /// `authenticatorAttachment`, `response` {`clientDataJSON`,
    /// `attestationObject`, `transports`} and `clientExtensionResults`.
    ///
    /// Errors start with the name of the `DOMException` a browser would
    /// throw: `InvalidStateError` when a credential of `excludeCredentials`
    /// is on this authenticator, `NotSupportedError` without ES256 in
    /// `pubKeyCredParams`, `SecurityError` for an origin outside `rp.id`.
    pub async fn register(&self, origin: &str, options: &Value) -> Result<Value, String> {
        let origin = Url::parse(origin).map_err(|e| format!("origin {origin:?}: {e}"))?;
        let mut options = unwrap_public_key(options);
        if !self.user_verification
            && let Some(selection) = options
                .get_mut("authenticatorSelection")
                .and_then(Value::as_object_mut)
        {
            selection.insert("userVerification".into(), json!("discouraged"));
        }
        let public_key: PublicKeyCredentialCreationOptions = serde_json::from_value(options)
            .map_err(|e| format!("PublicKeyCredentialCreationOptions: {e}"))?;
        check_origin(&origin, public_key.rp.id.as_deref())?;

        let mut client = Client::new(self.authenticator()?)
            .allows_insecure_localhost(true)
            .user_verification_when_preferred(self.user_verification);
        let created = client
            .register(
                &origin,
                CredentialCreationOptions { public_key },
                DefaultClientData,
            )
            .await
            .map_err(dom_exception)?;

        let mut response = Map::new();
        response.insert(
            "clientDataJSON".into(),
            json!(b64url(&created.response.client_data_json)),
        );
        response.insert(
            "attestationObject".into(),
            json!(b64url(&created.response.attestation_object)),
        );
        if let Some(transports) = &created.response.transports {
            response.insert("transports".into(), to_json(transports)?);
        }
        Ok(json!({
            "id": b64url(&created.raw_id),
            "rawId": b64url(&created.raw_id),
            "type": "public-key",
            "authenticatorAttachment": to_json(&created.authenticator_attachment)?,
            "response": response,
            "clientExtensionResults": to_json(&created.client_extension_results)?,
        }))
    }

    /// `navigator.credentials.get({ publicKey: options })` from `origin`.
    /// `options` is `PublicKeyCredentialRequestOptions` in WebAuthn JSON form
    /// (or wrapped in `publicKey`). With `allowCredentials` absent or empty
    /// it is a discoverable-credential request and the most recently created
    /// credential for `rpId` answers.
    ///
    /// Returns `PublicKeyCredential.toJSON()`: `id`, `rawId`, `type`,
    /// `authenticatorAttachment`, `response` {`authenticatorData`,
    /// `clientDataJSON`, `signature`, `userHandle`} and
    /// `clientExtensionResults`. Errors start with the name of the
    /// `DOMException` a browser would throw: `NotAllowedError` when none of
    /// the credentials asked for is here, `SecurityError` for an origin
    /// outside `rpId`.
    pub async fn authenticate(&self, origin: &str, options: &Value) -> Result<Value, String> {
        let origin = Url::parse(origin).map_err(|e| format!("origin {origin:?}: {e}"))?;
        let mut options = unwrap_public_key(options);
        if !self.user_verification
            && let Some(options) = options.as_object_mut()
        {
            options.insert("userVerification".into(), json!("discouraged"));
        }
        let public_key: PublicKeyCredentialRequestOptions = serde_json::from_value(options)
            .map_err(|e| format!("PublicKeyCredentialRequestOptions: {e}"))?;
        check_origin(&origin, public_key.rp_id.as_deref())?;

        let mut client = Client::new(self.authenticator()?)
            .allows_insecure_localhost(true)
            .user_verification_when_preferred(self.user_verification);
        let asserted = client
            .authenticate(
                &origin,
                CredentialRequestOptions { public_key },
                DefaultClientData,
            )
            .await
            .map_err(dom_exception)?;

        let mut response = Map::new();
        response.insert(
            "authenticatorData".into(),
            json!(b64url(&asserted.response.authenticator_data)),
        );
        response.insert(
            "clientDataJSON".into(),
            json!(b64url(&asserted.response.client_data_json)),
        );
        response.insert(
            "signature".into(),
            json!(b64url(&asserted.response.signature)),
        );
        response.insert(
            "userHandle".into(),
            asserted
                .response
                .user_handle
                .as_ref()
                .map_or(Value::Null, |handle| json!(b64url(handle))),
        );
        Ok(json!({
            "id": b64url(&asserted.raw_id),
            "rawId": b64url(&asserted.raw_id),
            "type": "public-key",
            "authenticatorAttachment": to_json(&asserted.authenticator_attachment)?,
            "response": response,
            "clientExtensionResults": to_json(&asserted.client_extension_results)?,
        }))
    }

    /// Number of credentials this authenticator holds (all relying parties).
    pub fn credential_count(&self) -> usize {
        self.store.credentials().len()
    }

    /// Makes the next assertion of every credential report a signature
    /// counter lower than the last one reported, as a cloned authenticator
    /// would (counting goes on from there).
    pub fn roll_back_counter(&self) {
        for credential in self.store.credentials().iter_mut() {
            credential.counter = credential.counter.map(|counter| counter.saturating_sub(2));
        }
    }

    /// This authenticator, for a client. A browser around it
    /// ([`Client::new`]) must allow plain `http` on `localhost`, and ask it
    /// for user verification on `preferred` when it can do it.
    fn authenticator(
        &self,
    ) -> Result<Authenticator<Store, UserPresence, RustCryptoBackend>, String> {
        let mut authenticator = Authenticator::new(
            Aaguid::new_empty(),
            self.store.clone(),
            UserPresence {
                verification: self.user_verification,
            },
            RustCryptoBackend,
        );
        authenticator.set_make_credentials_with_signature_counter(true);
        authenticator
            .set_algorithms(&[Algorithm::ES256])
            .map_err(|e| format!("NotSupportedError ({e:?})"))?;
        Ok(authenticator)
    }
}

/// `b64url` decoding (no padding; padding tolerated). Panics on bad input.
#[cfg(test)]
pub fn b64url_decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("not base64url: {text:?}: {e}"))
}

/// base64url without padding, as WebAuthn JSON uses.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes `response.clientDataJSON` of a credential (the JSON of
/// `register` or `authenticate`), lets `edit` change it (e.g. its
/// `challenge` or `origin`), and encodes it back. The authenticator's
/// signature no longer covers it.
#[cfg(test)]
pub fn tamper_client_data(credential: &mut Value, edit: impl FnOnce(&mut Value)) {
    let encoded = credential["response"]["clientDataJSON"]
        .as_str()
        .expect("response.clientDataJSON is a string");
    let mut client_data: Value =
        serde_json::from_slice(&b64url_decode(encoded)).expect("clientDataJSON is JSON");
    edit(&mut client_data);
    let bytes = serde_json::to_vec(&client_data).expect("clientDataJSON serialises");
    credential["response"]["clientDataJSON"] = json!(b64url(&bytes));
}

/// What a browser checks before it involves an authenticator: a secure
/// context (`https`, or `http` on `localhost`), and an RP ID that is the
/// origin's host or a parent domain of it. `passkey-client` lets any origin
/// claim RP ID `localhost` once insecure `localhost` is allowed, hence this.
fn check_origin(origin: &Url, rp_id: Option<&str>) -> Result<(), String> {
    let host = origin
        .host_str()
        .ok_or_else(|| format!("SecurityError: origin {origin} has no host"))?;
    let localhost = host == "localhost" || host.ends_with(".localhost");
    if origin.scheme() != "https" && !(origin.scheme() == "http" && localhost) {
        return Err(format!(
            "SecurityError: origin {origin} is not a secure context"
        ));
    }
    if let Some(rp_id) = rp_id
        && host != rp_id
        && !host.ends_with(&format!(".{rp_id}"))
    {
        return Err(format!(
            "SecurityError: RP ID {rp_id:?} is not origin {origin}'s host or a parent domain of it"
        ));
    }
    Ok(())
}

/// The name of the `DOMException` a browser would throw, then the client's
/// own error.
fn dom_exception(error: ClientError) -> String {
    let excluded = u8::from(StatusCode::from(Ctap2Error::CredentialExcluded));
    let unsupported = u8::from(StatusCode::from(Ctap2Error::UnsupportedAlgorithm));
    let name = match &error {
        ClientError::AuthenticatorError(code) if *code == excluded => "InvalidStateError",
        ClientError::AuthenticatorError(code) if *code == unsupported => "NotSupportedError",
        ClientError::OriginMissingDomain
        | ClientError::OriginRpMissmatch
        | ClientError::InvalidRpId
        | ClientError::UnprotectedOrigin
        | ClientError::InsecureLocalhostNotAllowed => "SecurityError",
        _ => "NotAllowedError",
    };
    format!("{name} ({error:?})")
}

fn unwrap_public_key(options: &Value) -> Value {
    options.get("publicKey").unwrap_or(options).clone()
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
}

/// The credentials, shared by the clones of a [`SoftAuthenticator`].
#[derive(Clone, Default)]
struct Store(Arc<Mutex<Vec<Passkey>>>);

impl Store {
    fn credentials(&self) -> MutexGuard<'_, Vec<Passkey>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl CredentialStore for Store {
    type PasskeyItem = Passkey;

    /// The credentials for `rp_id` among `ids` (all of them when `ids` is
    /// absent), most recent first.
    async fn find_credentials(
        &self,
        ids: Option<&[PublicKeyCredentialDescriptor]>,
        rp_id: &str,
        _user_handle: Option<&[u8]>,
    ) -> Result<Vec<Passkey>, StatusCode> {
        let found: Vec<Passkey> = self
            .credentials()
            .iter()
            .rev()
            .filter(|credential| credential.rp_id == rp_id)
            .filter(|credential| {
                ids.is_none_or(|ids| ids.iter().any(|id| id.id == credential.credential_id))
            })
            .cloned()
            .collect();
        if found.is_empty() {
            Err(Ctap2Error::NoCredentials.into())
        } else {
            Ok(found)
        }
    }

    /// Stores a new credential; one for the same relying party and user
    /// handle is replaced (CTAP2 authenticatorMakeCredential step 10).
    async fn save_credential(
        &mut self,
        mut credential: Passkey,
        _user: PublicKeyCredentialUserEntity,
        _rp: PublicKeyCredentialRpEntity,
        _options: Options,
    ) -> Result<(), StatusCode> {
        credential.counter = credential.counter.map(|_| COUNTER_START);
        let mut credentials = self.credentials();
        credentials.retain(|existing| {
            existing.rp_id != credential.rp_id || existing.user_handle != credential.user_handle
        });
        credentials.push(credential);
        Ok(())
    }

    async fn update_credential(&mut self, credential: &Passkey) -> Result<(), StatusCode> {
        let mut credentials = self.credentials();
        let stored = credentials
            .iter_mut()
            .find(|stored| stored.credential_id == credential.credential_id)
            .ok_or(StatusCode::from(Ctap2Error::NoCredentials))?;
        *stored = credential.clone();
        Ok(())
    }

    async fn get_info(&self) -> StoreInfo {
        StoreInfo {
            discoverability: DiscoverabilitySupport::ForcedDiscoverable,
        }
    }
}

/// The "user": always present, verified when able and asked to, and it
/// declines to go on when the authenticator already holds an excluded
/// credential (the crate leaves that decision to this hook).
struct UserPresence {
    verification: bool,
}

#[async_trait::async_trait]
impl UserValidationMethod for UserPresence {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        hint: UiHint<'a, Passkey>,
        _presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        if let UiHint::InformExcludedCredentialFound(_) = hint {
            return Err(Ctap2Error::CredentialExcluded);
        }
        Ok(UserCheck {
            presence: true,
            verification: self.verification && verification,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        self.verification.then_some(true)
    }
}

#[cfg(test)]
const ORIGIN: &str = "http://localhost:3917";

#[cfg(test)]
fn relying_party() -> Webauthn {
    let origin = Url::parse(ORIGIN).unwrap();
    WebauthnBuilder::new("localhost", &origin)
        .unwrap()
        .rp_name("acme")
        .build()
        .unwrap()
}

/// The `publicKey` member of a `webauthn-rs` challenge, as a server sends it.
#[cfg(test)]
fn public_key_of(challenge: &impl serde::Serialize) -> Value {
    let mut challenge = serde_json::to_value(challenge).unwrap();
    challenge["publicKey"].take()
}

#[cfg(test)]
fn user(n: u128) -> Uuid {
    Uuid::from_u128(0x6c61_7463_686b_6579_0000_0000_0000_0000 | n)
}

/// Registers a passkey for `user` with `authenticator` at the relying party.
#[cfg(test)]
async fn enrol(rp: &Webauthn, authenticator: &SoftAuthenticator, user: Uuid) -> RpPasskey {
    let (challenge, state) = rp
        .start_passkey_registration(user, "alice@example.com", "Alice", None)
        .unwrap();
    let credential = authenticator
        .register(ORIGIN, &public_key_of(&challenge))
        .await
        .unwrap();
    let credential: RegisterPublicKeyCredential = serde_json::from_value(credential).unwrap();
    rp.finish_passkey_registration(&credential, &state).unwrap()
}

#[cfg(test)]
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[cfg(test)]
fn client_data(credential: &Value) -> Value {
    let encoded = credential["response"]["clientDataJSON"].as_str().unwrap();
    serde_json::from_slice(&b64url_decode(encoded)).unwrap()
}

/// The flags byte of an assertion's authenticator data.
#[cfg(test)]
fn assertion_flags(assertion: &Value) -> u8 {
    b64url_decode(assertion["response"]["authenticatorData"].as_str().unwrap())[32]
}

/// The signature counter of an assertion's authenticator data.
#[cfg(test)]
fn counter_of(assertion: &Value) -> u32 {
    let data = b64url_decode(assertion["response"]["authenticatorData"].as_str().unwrap());
    u32::from_be_bytes(data[33..37].try_into().unwrap())
}

#[cfg(test)]
const FLAG_UP: u8 = 0x01;
#[cfg(test)]
const FLAG_UV: u8 = 0x04;

#[tokio::test]
async fn registers_and_authenticates_with_allow_credentials() {
    let rp = relying_party();
    let authenticator = SoftAuthenticator::new();
    let alice = user(1);

    let (challenge, state) = rp
        .start_passkey_registration(alice, "alice@example.com", "Alice", None)
        .unwrap();
    let options = public_key_of(&challenge);
    // webauthn-rs uses the 16 bytes of the UUID as the user handle.
    assert_eq!(options["user"]["id"], json!(b64url(alice.as_bytes())));
    let created = authenticator.register(ORIGIN, &options).await.unwrap();

    // PublicKeyCredential.toJSON() of an attestation.
    assert_eq!(
        keys(&created),
        [
            "authenticatorAttachment",
            "clientExtensionResults",
            "id",
            "rawId",
            "response",
            "type"
        ]
    );
    assert_eq!(created["type"], "public-key");
    assert_eq!(created["authenticatorAttachment"], "platform");
    assert_eq!(created["id"], created["rawId"]);
    assert_eq!(
        keys(&created["response"]),
        ["attestationObject", "clientDataJSON", "transports"]
    );
    assert_eq!(
        created["response"]["transports"],
        json!(["internal", "hybrid"])
    );
    let collected = client_data(&created);
    assert_eq!(collected["type"], "webauthn.create");
    assert_eq!(collected["origin"], ORIGIN);
    assert_eq!(collected["challenge"], options["challenge"]);
    assert_eq!(authenticator.credential_count(), 1);

    let credential: RegisterPublicKeyCredential = serde_json::from_value(created.clone()).unwrap();
    let mut passkey = rp.finish_passkey_registration(&credential, &state).unwrap();
    assert_eq!(
        b64url(passkey.cred_id().as_ref()),
        created["id"].as_str().unwrap()
    );

    let (challenge, state) = rp
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let options = public_key_of(&challenge);
    assert_eq!(options["allowCredentials"][0]["id"], created["id"]);
    let asserted = authenticator.authenticate(ORIGIN, &options).await.unwrap();

    // PublicKeyCredential.toJSON() of an assertion.
    assert_eq!(
        keys(&asserted),
        [
            "authenticatorAttachment",
            "clientExtensionResults",
            "id",
            "rawId",
            "response",
            "type"
        ]
    );
    assert_eq!(asserted["id"], created["id"]);
    assert_eq!(asserted["rawId"], created["id"]);
    assert_eq!(asserted["clientExtensionResults"], json!({}));
    assert_eq!(
        keys(&asserted["response"]),
        [
            "authenticatorData",
            "clientDataJSON",
            "signature",
            "userHandle"
        ]
    );
    assert_eq!(
        asserted["response"]["userHandle"],
        json!(b64url(alice.as_bytes()))
    );
    assert_eq!(
        assertion_flags(&asserted) & (FLAG_UP | FLAG_UV),
        FLAG_UP | FLAG_UV
    );
    let collected = client_data(&asserted);
    assert_eq!(collected["type"], "webauthn.get");
    assert_eq!(collected["origin"], ORIGIN);
    assert_eq!(collected["challenge"], options["challenge"]);

    let response: PublicKeyCredential = serde_json::from_value(asserted).unwrap();
    let result = rp.finish_passkey_authentication(&response, &state).unwrap();
    assert!(result.user_verified());
    assert_eq!(result.cred_id(), passkey.cred_id());
    assert_eq!(result.counter(), COUNTER_START + 1);
    assert_eq!(passkey.update_credential(&result), Some(true));

    // And again: the counter moves on.
    let (challenge, state) = rp
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let asserted = authenticator
        .authenticate(ORIGIN, &public_key_of(&challenge))
        .await
        .unwrap();
    let response: PublicKeyCredential = serde_json::from_value(asserted).unwrap();
    let result = rp.finish_passkey_authentication(&response, &state).unwrap();
    assert_eq!(result.counter(), COUNTER_START + 2);
}

#[tokio::test]
async fn discoverable_authentication_identifies_the_user() {
    let rp = relying_party();
    let authenticator = SoftAuthenticator::new();
    let alice = user(2);
    let passkey = enrol(&rp, &authenticator, alice).await;

    let (challenge, state) = rp.start_discoverable_authentication().unwrap();
    let options = public_key_of(&challenge);
    assert!(
        options["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{options}"
    );
    let asserted = authenticator.authenticate(ORIGIN, &options).await.unwrap();
    let response: PublicKeyCredential = serde_json::from_value(asserted).unwrap();

    let (user_id, credential_id) = rp.identify_discoverable_authentication(&response).unwrap();
    assert_eq!(user_id, alice);
    let expected: &[u8] = passkey.cred_id().as_ref();
    assert_eq!(credential_id, expected);
    let result = rp
        .finish_discoverable_authentication_v2(&response, state, DiscoverableKey::from(&passkey))
        .unwrap();
    assert!(result.user_verified());
    assert_eq!(result.cred_id(), passkey.cred_id());
}

#[tokio::test]
async fn discoverable_authentication_uses_the_newest_credential_of_the_rp() {
    let rp = relying_party();
    let authenticator = SoftAuthenticator::new();
    enrol(&rp, &authenticator, user(3)).await;
    let bob = user(4);
    let passkey = enrol(&rp, &authenticator, bob).await;
    assert_eq!(authenticator.credential_count(), 2);

    let (challenge, state) = rp.start_discoverable_authentication().unwrap();
    let asserted = authenticator
        .authenticate(ORIGIN, &public_key_of(&challenge))
        .await
        .unwrap();
    let response: PublicKeyCredential = serde_json::from_value(asserted).unwrap();
    let (user_id, _) = rp.identify_discoverable_authentication(&response).unwrap();
    assert_eq!(user_id, bob);
    rp.finish_discoverable_authentication_v2(&response, state, DiscoverableKey::from(&passkey))
        .unwrap();

    // Another relying party finds nothing here.
    let options = json!({"challenge": b64url(b"0123456789abcdef"), "rpId": "example.com"});
    let refused = authenticator
        .authenticate("https://example.com", &options)
        .await
        .unwrap_err();
    assert!(refused.starts_with("NotAllowedError"), "{refused}");
}

#[tokio::test]
async fn excluded_credentials_are_not_registered_again() {
    let rp = relying_party();
    let authenticator = SoftAuthenticator::new();
    let alice = user(5);
    let passkey = enrol(&rp, &authenticator, alice).await;

    let (challenge, _state) = rp
        .start_passkey_registration(
            alice,
            "alice@example.com",
            "Alice",
            Some(vec![passkey.cred_id().clone()]),
        )
        .unwrap();
    let options = public_key_of(&challenge);
    assert_eq!(
        options["excludeCredentials"][0]["id"],
        json!(b64url(passkey.cred_id().as_ref()))
    );
    let refused = authenticator.register(ORIGIN, &options).await.unwrap_err();
    assert!(refused.starts_with("InvalidStateError"), "{refused}");
    assert_eq!(authenticator.credential_count(), 1);

    // Another authenticator does not hold the excluded credential.
    let other = SoftAuthenticator::new();
    other.register(ORIGIN, &options).await.unwrap();
    assert_eq!(other.credential_count(), 1);
}

#[tokio::test]
async fn a_wrong_origin_is_refused_by_the_relying_party() {
    let rp = relying_party();
    let authenticator = SoftAuthenticator::new();

    // Same RP ID, other port: the client signs, the relying party refuses.
    let (challenge, state) = rp
        .start_passkey_registration(user(6), "alice@example.com", "Alice", None)
        .unwrap();
    let created = authenticator
        .register("http://localhost:4000", &public_key_of(&challenge))
        .await
        .unwrap();
    assert_eq!(client_data(&created)["origin"], "http://localhost:4000");
    let credential: RegisterPublicKeyCredential = serde_json::from_value(created).unwrap();
    let refused = rp
        .finish_passkey_registration(&credential, &state)
        .unwrap_err();
    assert!(
        matches!(refused, WebauthnError::InvalidRPOrigin),
        "{refused:?}"
    );

    // An assertion whose client data names another origin.
    let passkey = enrol(&rp, &authenticator, user(7)).await;
    let (challenge, state) = rp.start_passkey_authentication(&[passkey]).unwrap();
    let mut asserted = authenticator
        .authenticate(ORIGIN, &public_key_of(&challenge))
        .await
        .unwrap();
    tamper_client_data(&mut asserted, |data| {
        data["origin"] = json!("http://evil.example");
    });
    let response: PublicKeyCredential = serde_json::from_value(asserted).unwrap();
    let refused = rp
        .finish_passkey_authentication(&response, &state)
        .unwrap_err();
    assert!(
        matches!(refused, WebauthnError::InvalidRPOrigin),
        "{refused:?}"
    );

    // A client refuses by itself an origin outside the RP ID.
    let (challenge, _state) = rp
        .start_passkey_registration(user(8), "alice@example.com", "Alice", None)
        .unwrap();
    let refused = authenticator
        .register("http://evil.example", &public_key_of(&challenge))
        .await
        .unwrap_err();
    assert!(refused.starts_with("SecurityError"), "{refused}");
    let refused = authenticator
        .register("http://localhost.evil.example", &public_key_of(&challenge))
        .await
        .unwrap_err();
    assert!(refused.starts_with("SecurityError"), "{refused}");
}

#[tokio::test]
async fn a_tampered_challenge_is_refused() {
    let rp = relying_party();
    let authenticator = SoftAuthenticator::new();
    let other_challenge = json!(b64url(&[7; 32]));

    let (challenge, state) = rp
        .start_passkey_registration(user(9), "alice@example.com", "Alice", None)
        .unwrap();
    let mut created = authenticator
        .register(ORIGIN, &public_key_of(&challenge))
        .await
        .unwrap();
    tamper_client_data(&mut created, |data| {
        data["challenge"] = other_challenge.clone();
    });
    let credential: RegisterPublicKeyCredential = serde_json::from_value(created).unwrap();
    let refused = rp
        .finish_passkey_registration(&credential, &state)
        .unwrap_err();
    assert!(
        matches!(refused, WebauthnError::MismatchedChallenge),
        "{refused:?}"
    );

    let passkey = enrol(&rp, &authenticator, user(10)).await;
    let (challenge, state) = rp
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let mut asserted = authenticator
        .authenticate(ORIGIN, &public_key_of(&challenge))
        .await
        .unwrap();
    tamper_client_data(&mut asserted, |data| {
        data["challenge"] = other_challenge.clone();
    });
    let response: PublicKeyCredential = serde_json::from_value(asserted).unwrap();
    let refused = rp
        .finish_passkey_authentication(&response, &state)
        .unwrap_err();
    assert!(
        matches!(refused, WebauthnError::MismatchedChallenge),
        "{refused:?}"
    );

    // An untouched assertion made for another ceremony: its challenge is not this one's.
    let (first, _first_state) = rp
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let (_second, second_state) = rp.start_passkey_authentication(&[passkey]).unwrap();
    let asserted = authenticator
        .authenticate(ORIGIN, &public_key_of(&first))
        .await
        .unwrap();
    let response: PublicKeyCredential = serde_json::from_value(asserted).unwrap();
    let refused = rp
        .finish_passkey_authentication(&response, &second_state)
        .unwrap_err();
    assert!(
        matches!(refused, WebauthnError::MismatchedChallenge),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_counter_rollback_is_detected() {
    let rp = relying_party();
    let authenticator = SoftAuthenticator::new();
    let mut passkey = enrol(&rp, &authenticator, user(11)).await;

    let (challenge, state) = rp
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let asserted = authenticator
        .authenticate(ORIGIN, &public_key_of(&challenge))
        .await
        .unwrap();
    let response: PublicKeyCredential = serde_json::from_value(asserted).unwrap();
    let result = rp.finish_passkey_authentication(&response, &state).unwrap();
    let last = result.counter();
    assert!(result.needs_update());
    assert_eq!(passkey.update_credential(&result), Some(true));

    authenticator.roll_back_counter();
    let (challenge, state) = rp
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let asserted = authenticator
        .authenticate(ORIGIN, &public_key_of(&challenge))
        .await
        .unwrap();
    assert!(counter_of(&asserted) < last);
    let response: PublicKeyCredential = serde_json::from_value(asserted).unwrap();
    let refused = rp
        .finish_passkey_authentication(&response, &state)
        .unwrap_err();
    assert!(
        matches!(refused, WebauthnError::CredentialPossibleCompromise),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_authenticator_without_user_verification_is_refused_when_it_is_required() {
    let rp = relying_party();
    let authenticator = SoftAuthenticator::without_user_verification();

    let (challenge, state) = rp
        .start_passkey_registration(user(12), "alice@example.com", "Alice", None)
        .unwrap();
    let options = public_key_of(&challenge);
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    let created = authenticator.register(ORIGIN, &options).await.unwrap();
    let credential: RegisterPublicKeyCredential = serde_json::from_value(created).unwrap();
    let refused = rp
        .finish_passkey_registration(&credential, &state)
        .unwrap_err();
    assert!(
        matches!(refused, WebauthnError::UserNotVerified),
        "{refused:?}"
    );
}

/// Creation options in the My Account API shape (Auth0), with members
/// webauthn-rs adds, and request options likewise.
#[tokio::test]
async fn takes_my_account_shaped_options() {
    let authenticator = SoftAuthenticator::new();
    let user_id = b64url(b"auth0|507f1f77bcf86cd799439011");
    let options = json!({
        "challenge": b64url(&[1; 32]),
        "timeout": 60000,
        "rp": {"id": "localhost", "name": "acme"},
        "user": {"id": user_id, "name": "alice@example.com", "displayName": "Alice"},
        "pubKeyCredParams": [
            {"type": "public-key", "alg": -8},
            {"type": "public-key", "alg": -7},
            {"type": "public-key", "alg": -257}
        ],
        "authenticatorSelection": {
            "residentKey": "required",
            "requireResidentKey": true,
            "userVerification": "preferred"
        },
        "attestation": "none",
        "hints": ["client-device"],
        "extensions": {"credProps": true, "uvm": true, "credentialProtectionPolicy": "userVerificationOptional"},
        "excludeCredentials": []
    });
    let created = authenticator.register(ORIGIN, &options).await.unwrap();
    assert_eq!(
        created["clientExtensionResults"],
        json!({"credProps": {"rk": true}})
    );
    // The API's limits on AuthenticatorAttestationResponseData.
    assert!(
        created["response"]["attestationObject"]
            .as_str()
            .unwrap()
            .len()
            <= 2000
    );
    assert!(
        created["response"]["clientDataJSON"]
            .as_str()
            .unwrap()
            .len()
            <= 1000
    );
    assert_eq!(client_data(&created)["challenge"], options["challenge"]);

    let request = json!({
        "challenge": b64url(&[2; 32]),
        "timeout": 60000,
        "rpId": "localhost",
        "userVerification": "preferred",
        "allowCredentials": [{"type": "public-key", "id": created["id"], "transports": ["internal", "hybrid"]}]
    });
    let asserted = authenticator.authenticate(ORIGIN, &request).await.unwrap();
    assert_eq!(asserted["id"], created["id"]);
    assert_eq!(asserted["response"]["userHandle"], json!(user_id));
    assert_eq!(
        assertion_flags(&asserted) & (FLAG_UP | FLAG_UV),
        FLAG_UP | FLAG_UV
    );
    assert_eq!(client_data(&asserted)["challenge"], request["challenge"]);

    // Wrapped in `publicKey`, discoverable.
    let request = json!({"publicKey": {"challenge": b64url(&[3; 32]), "rpId": "localhost"}});
    let asserted = authenticator.authenticate(ORIGIN, &request).await.unwrap();
    assert_eq!(asserted["id"], created["id"]);

    // Excluding it now fails; an unknown credential ID in the list does not matter.
    let mut again = options.clone();
    again["excludeCredentials"] = json!([
        {"type": "public-key", "id": b64url(&[9; 16])},
        {"type": "public-key", "id": created["id"]}
    ]);
    let refused = authenticator.register(ORIGIN, &again).await.unwrap_err();
    assert!(refused.starts_with("InvalidStateError"), "{refused}");
    again["excludeCredentials"] = json!([{"type": "public-key", "id": b64url(&[9; 16])}]);
    // Same user handle and RP: the new credential replaces the old one.
    authenticator.register(ORIGIN, &again).await.unwrap();
    assert_eq!(authenticator.credential_count(), 1);

    // Without user verification: UV stays 0 even on "required".
    let no_uv = SoftAuthenticator::without_user_verification();
    let created = no_uv.register(ORIGIN, &options).await.unwrap();
    let mut request = json!({
        "challenge": b64url(&[4; 32]),
        "rpId": "localhost",
        "userVerification": "required",
        "allowCredentials": [{"type": "public-key", "id": created["id"]}]
    });
    let asserted = no_uv.authenticate(ORIGIN, &request).await.unwrap();
    assert_eq!(assertion_flags(&asserted) & (FLAG_UP | FLAG_UV), FLAG_UP);
    request["allowCredentials"] = json!([]);
    no_uv.authenticate(ORIGIN, &request).await.unwrap();
}

#[tokio::test]
async fn answers_eddsa_first_options_with_es256() {
    let rp = relying_party();
    let authenticator = SoftAuthenticator::new();
    let (challenge, state) = rp
        .start_passkey_registration(user(13), "alice@example.com", "Alice", None)
        .unwrap();
    let mut options = public_key_of(&challenge);
    let params = options["pubKeyCredParams"].as_array_mut().unwrap();
    assert!(params.iter().all(|param| param["alg"] != -8), "{params:?}");
    params.insert(0, json!({"type": "public-key", "alg": -8}));
    let created = authenticator.register(ORIGIN, &options).await.unwrap();
    let credential: RegisterPublicKeyCredential = serde_json::from_value(created).unwrap();
    rp.finish_passkey_registration(&credential, &state).unwrap();

    options["pubKeyCredParams"] =
        json!([{"type": "public-key", "alg": -8}, {"type": "public-key", "alg": -257}]);
    let refused = authenticator.register(ORIGIN, &options).await.unwrap_err();
    assert!(refused.starts_with("NotSupportedError"), "{refused}");
}
