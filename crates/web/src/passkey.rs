//! Biometric confirmation on the primary: a passkey (WebAuthn, platform authenticator, user
//! verification required) that linking a new device must be approved with.
//!
//! Everything is local to this browser: the passkey's public key is kept in this browser's
//! device record, and an approval is an assertion that this code checks itself: the
//! challenge it chose, the origin, the RP id hash, the user-present and user-verified flags,
//! and the ES256 signature over `authenticatorData ‖ SHA-256(clientDataJSON)` under the
//! enrolled key. Only ES256 (P-256) passkeys are asked for.

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

pub use crate::store::Passkey;
use crate::store::{BrowserDb, DeviceRecord};

/// COSE algorithm id of ES256.
const ES256: i32 = -7;
/// How long the browser's prompt waits.
const TIMEOUT_MS: u32 = 60_000;
/// DER prefix of a P-256 SubjectPublicKeyInfo; the 65-byte SEC1 point follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// authenticatorData flags.
const USER_PRESENT: u8 = 0x01;
const USER_VERIFIED: u8 = 0x04;

/// Why enrolling or approving with a passkey failed; `Display` is for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyError {
    /// No WebAuthn, or no platform authenticator with user verification.
    #[error(
        "This browser has no fingerprint, face or screen-lock check that Tandem can use for passkeys."
    )]
    Unavailable,
    /// The person cancelled, the prompt timed out, or verification failed.
    #[error("The fingerprint, face or screen-lock check was cancelled or did not succeed.")]
    NotAllowed,
    /// The page is not a secure context, or the RP id does not fit.
    #[error("Passkeys need a secure page (https, or http://localhost).")]
    Insecure,
    /// The authenticator already holds a passkey for this account.
    #[error("This browser already has a passkey for this account; remove it first.")]
    Exists,
    /// The answer did not check out (not verified, wrong challenge, bad signature, …).
    #[error("The passkey's answer did not check out ({0}), so nothing was approved.")]
    Invalid(&'static str),
    /// The passkey cannot give the secret the app lock needs (no PRF extension).
    #[error(
        "This passkey cannot lock Tandem (it does not support the PRF extension); use a passphrase instead."
    )]
    NoPrf,
    /// Anything else the browser said.
    #[error("The browser refused the passkey: {0}")]
    Browser(String),
}

fn browser_error(e: &JsValue) -> PasskeyError {
    let name = Reflect::get(e, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
    match name.as_str() {
        "NotAllowedError" | "AbortError" => PasskeyError::NotAllowed,
        "SecurityError" => PasskeyError::Insecure,
        "InvalidStateError" => PasskeyError::Exists,
        "NotSupportedError" => PasskeyError::Unavailable,
        _ => PasskeyError::Browser(
            Reflect::get(e, &"message".into()).ok().and_then(|m| m.as_string()).unwrap_or(name),
        ),
    }
}

fn set(o: &Object, k: &str, v: &JsValue) {
    let _ = Reflect::set(o, &k.into(), v);
}

fn object(pairs: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in pairs {
        set(&o, k, v);
    }
    o
}

fn bytes(v: &[u8]) -> JsValue {
    Uint8Array::from(v).buffer().into()
}

fn buffer_bytes(v: &JsValue) -> Option<Vec<u8>> {
    if v.is_undefined() || v.is_null() {
        return None;
    }
    Some(Uint8Array::new(v).to_vec())
}

fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, PasskeyError> {
    let f: Function = Reflect::get(target, &method.into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or(PasskeyError::Unavailable)?;
    f.apply(target, &args.iter().collect::<Array>()).map_err(|e| browser_error(&e))
}

async fn wait(p: JsValue) -> Result<JsValue, PasskeyError> {
    JsFuture::from(Promise::from(p)).await.map_err(|e| browser_error(&e))
}

fn credentials() -> Result<(web_sys::Window, JsValue), PasskeyError> {
    let window = web_sys::window().ok_or(PasskeyError::Unavailable)?;
    let creds = Reflect::get(&window.navigator(), &"credentials".into())
        .ok()
        .filter(|c| !c.is_undefined())
        .ok_or(PasskeyError::Unavailable)?;
    Ok((window, creds))
}

fn rp_id(window: &web_sys::Window) -> Result<String, PasskeyError> {
    window.location().hostname().map_err(|_| PasskeyError::Insecure)
}

/// Whether this browser has a platform authenticator that verifies the user.
pub async fn available() -> bool {
    let Some(window) = web_sys::window() else { return false };
    let Ok(ctor) = Reflect::get(&window, &"PublicKeyCredential".into()) else { return false };
    if ctor.is_undefined() {
        return false;
    }
    match call(&ctor, "isUserVerifyingPlatformAuthenticatorAvailable", &[]) {
        Ok(p) => wait(p).await.is_ok_and(|v| v.is_truthy()),
        Err(_) => false,
    }
}

fn challenge() -> [u8; 32] {
    crate::rng::random_bytes::<32>()
}

/// Enrols a passkey for `account` (shown as `@handle`), asking for user verification.
pub async fn enrol(account: &[u8], handle: &str) -> Result<Passkey, PasskeyError> {
    enrol_with(account, handle, false).await
}

/// Enrols a passkey that can also give a secret (the WebAuthn PRF extension), for the app
/// lock. Fails with [`PasskeyError::NoPrf`] when the authenticator cannot.
pub async fn enrol_for_lock(account: &[u8], handle: &str) -> Result<Passkey, PasskeyError> {
    enrol_with(account, handle, true).await
}

/// The passkey's PRF secret for `salt`, after user verification; 32 bytes.
pub async fn prf_secret(
    credential_id: &[u8],
    salt: &[u8; 32],
) -> Result<zeroize::Zeroizing<Vec<u8>>, PasskeyError> {
    let (window, creds) = credentials()?;
    let allow = Array::of1(&object(&[("type", "public-key".into()), ("id", bytes(credential_id))]));
    let prf = object(&[("eval", object(&[("first", bytes(salt))]).into())]);
    let public_key = object(&[
        ("challenge", bytes(&challenge())),
        ("rpId", rp_id(&window)?.into()),
        ("allowCredentials", allow.into()),
        ("userVerification", "required".into()),
        ("timeout", TIMEOUT_MS.into()),
        ("extensions", object(&[("prf", prf.into())]).into()),
    ]);
    let options = object(&[("publicKey", public_key.into())]);
    let credential = wait(call(&creds, "get", &[options.into()])?).await?;
    let results = call(&credential, "getClientExtensionResults", &[])?;
    let first = Reflect::get(&results, &"prf".into())
        .and_then(|p| Reflect::get(&p, &"results".into()))
        .and_then(|r| Reflect::get(&r, &"first".into()))
        .ok()
        .and_then(|f| buffer_bytes(&f))
        .ok_or(PasskeyError::NoPrf)?;
    if first.len() != 32 {
        return Err(PasskeyError::Invalid("a secret of the wrong size"));
    }
    Ok(zeroize::Zeroizing::new(first))
}

async fn enrol_with(account: &[u8], handle: &str, prf: bool) -> Result<Passkey, PasskeyError> {
    let (window, creds) = credentials()?;
    let rp = object(&[("name", "Tandem".into()), ("id", rp_id(&window)?.into())]);
    let user = object(&[
        ("id", bytes(account)),
        ("name", handle.into()),
        ("displayName", format!("@{handle}").into()),
    ]);
    let params = Array::of1(&object(&[("type", "public-key".into()), ("alg", ES256.into())]));
    let selection = object(&[
        ("authenticatorAttachment", "platform".into()),
        ("userVerification", "required".into()),
        ("residentKey", "preferred".into()),
    ]);
    let public_key = object(&[
        ("rp", rp.into()),
        ("user", user.into()),
        ("challenge", bytes(&challenge())),
        ("pubKeyCredParams", params.into()),
        ("authenticatorSelection", selection.into()),
        ("timeout", TIMEOUT_MS.into()),
        ("attestation", "none".into()),
    ]);
    if prf {
        set(&public_key, "extensions", &object(&[("prf", Object::new().into())]).into());
    }
    let options = object(&[("publicKey", public_key.into())]);
    let credential = wait(call(&creds, "create", &[options.into()])?).await?;
    if prf {
        let results = call(&credential, "getClientExtensionResults", &[])?;
        let enabled = Reflect::get(&results, &"prf".into())
            .and_then(|p| Reflect::get(&p, &"enabled".into()))
            .is_ok_and(|e| e.is_truthy());
        if !enabled {
            return Err(PasskeyError::NoPrf);
        }
    }
    let raw_id = Reflect::get(&credential, &"rawId".into())
        .ok()
        .and_then(|v| buffer_bytes(&v))
        .ok_or(PasskeyError::Invalid("no credential id"))?;
    let response = Reflect::get(&credential, &"response".into())
        .map_err(|_| PasskeyError::Invalid("no response"))?;
    let alg = call(&response, "getPublicKeyAlgorithm", &[])?.as_f64();
    if alg != Some(f64::from(ES256)) {
        return Err(PasskeyError::Invalid("not a P-256 key"));
    }
    let spki = buffer_bytes(&call(&response, "getPublicKey", &[])?)
        .ok_or(PasskeyError::Invalid("no public key"))?;
    let point = spki
        .strip_prefix(&P256_SPKI_PREFIX[..])
        .filter(|p| p.len() == 65)
        .ok_or(PasskeyError::Invalid("not a P-256 key"))?;
    VerifyingKey::from_sec1_bytes(point).map_err(|_| PasskeyError::Invalid("bad public key"))?;
    let auth_data = buffer_bytes(&call(&response, "getAuthenticatorData", &[])?)
        .ok_or(PasskeyError::Invalid("no authenticator data"))?;
    check_flags(&auth_data, &rp_id(&window)?)?;
    Ok(Passkey { credential_id: raw_id, public_key: point.to_vec() })
}

fn check_flags(auth_data: &[u8], rp_id: &str) -> Result<(), PasskeyError> {
    if auth_data.len() < 37 {
        return Err(PasskeyError::Invalid("short authenticator data"));
    }
    let rp_hash = Sha256::digest(rp_id.as_bytes());
    if !bool::from(auth_data[..32].ct_eq(&rp_hash[..])) {
        return Err(PasskeyError::Invalid("another site's passkey"));
    }
    let flags = auth_data[32];
    if flags & USER_PRESENT == 0 || flags & USER_VERIFIED == 0 {
        return Err(PasskeyError::Invalid("the person was not verified"));
    }
    Ok(())
}

/// Asks for the enrolled passkey with user verification and checks the answer.
pub async fn approve(passkey: &Passkey) -> Result<(), PasskeyError> {
    let (window, creds) = credentials()?;
    let rp = rp_id(&window)?;
    let challenge = challenge();
    let allow = Array::of1(&object(&[
        ("type", "public-key".into()),
        ("id", bytes(&passkey.credential_id)),
    ]));
    let public_key = object(&[
        ("challenge", bytes(&challenge)),
        ("rpId", rp.clone().into()),
        ("allowCredentials", allow.into()),
        ("userVerification", "required".into()),
        ("timeout", TIMEOUT_MS.into()),
    ]);
    let options = object(&[("publicKey", public_key.into())]);
    let credential = wait(call(&creds, "get", &[options.into()])?).await?;
    let response = Reflect::get(&credential, &"response".into())
        .map_err(|_| PasskeyError::Invalid("no response"))?;
    let field =
        |name: &str| Reflect::get(&response, &name.into()).ok().and_then(|v| buffer_bytes(&v));
    let auth_data =
        field("authenticatorData").ok_or(PasskeyError::Invalid("no authenticator data"))?;
    let client_data = field("clientDataJSON").ok_or(PasskeyError::Invalid("no client data"))?;
    let signature = field("signature").ok_or(PasskeyError::Invalid("no signature"))?;
    let origin = window.location().origin().map_err(|_| PasskeyError::Insecure)?;
    check_assertion(passkey, &rp, &origin, &challenge, &auth_data, &client_data, &signature)
}

/// The passkey enrolled in this browser, if any.
pub async fn enrolled() -> Result<Option<Passkey>, String> {
    let db = BrowserDb::open(BrowserDb::NAME).await.map_err(|e| e.to_string())?;
    let record = db.load_device().await.map_err(|e| e.to_string());
    db.close();
    Ok(record?.and_then(|r| r.passkey))
}

/// Keeps `passkey` (or forgets the enrolled one, for `None`) in this browser's record.
pub async fn keep(passkey: Option<Passkey>) -> Result<(), String> {
    let db = BrowserDb::open(BrowserDb::NAME).await.map_err(|e| e.to_string())?;
    let result = async {
        let (record, _) = db
            .load_or_create_device(crate::hooks::fresh_device)
            .await
            .map_err(|e| e.to_string())?;
        db.save_device(&DeviceRecord { passkey, ..record }).await.map_err(|e| e.to_string())
    }
    .await;
    db.close();
    result
}

/// Checks an assertion's parts (see the module docs).
pub fn check_assertion(
    passkey: &Passkey,
    rp_id: &str,
    origin: &str,
    challenge: &[u8],
    auth_data: &[u8],
    client_data: &[u8],
    signature: &[u8],
) -> Result<(), PasskeyError> {
    check_flags(auth_data, rp_id)?;
    let text =
        std::str::from_utf8(client_data).map_err(|_| PasskeyError::Invalid("client data"))?;
    let parsed = js_sys::JSON::parse(text).map_err(|_| PasskeyError::Invalid("client data"))?;
    let get = |k: &str| Reflect::get(&parsed, &k.into()).ok().and_then(|v| v.as_string());
    if get("type").as_deref() != Some("webauthn.get") {
        return Err(PasskeyError::Invalid("not an assertion"));
    }
    if get("origin").as_deref() != Some(origin) {
        return Err(PasskeyError::Invalid("another origin"));
    }
    use base64ct::{Base64UrlUnpadded, Encoding};
    let expected = Base64UrlUnpadded::encode_string(challenge);
    let got = get("challenge").unwrap_or_default();
    if !bool::from(expected.as_bytes().ct_eq(got.as_bytes())) {
        return Err(PasskeyError::Invalid("another challenge"));
    }
    let key = VerifyingKey::from_sec1_bytes(&passkey.public_key)
        .map_err(|_| PasskeyError::Invalid("bad public key"))?;
    let signature =
        Signature::from_der(signature).map_err(|_| PasskeyError::Invalid("bad signature"))?;
    let mut signed = auth_data.to_vec();
    signed.extend_from_slice(&Sha256::digest(client_data));
    key.verify(&signed, &signature).map_err(|_| PasskeyError::Invalid("bad signature"))
}
