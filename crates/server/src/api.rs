//! Request handlers: each takes the authenticated device (if any) and a request body, and
//! answers a response body or an [`ApiError`] with a status and a short reason.

pub mod account;
pub mod calls;
pub mod devices;
pub mod groups;
pub mod messages;
pub mod prekeys;

use std::time::Duration;

use subtle::ConstantTimeEq;
use tandem_core::AccountId;
use tandem_core::wire::relay::{MismatchedDevices, Status, request, response};

use crate::AppState;
use crate::limits::Limited;
use crate::storage::{Storage, StorageError};

/// The device a socket authenticated as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authed {
    /// Its account.
    pub account: AccountId,
    /// Its device id.
    pub device: u32,
}

impl Authed {
    /// Whether this is the account's primary.
    pub fn is_primary(&self) -> bool {
        self.device == 1
    }
}

/// A refused request.
#[derive(Debug)]
pub struct ApiError {
    /// The status class.
    pub status: Status,
    /// A short reason for people and logs (never plaintext or secrets).
    pub message: String,
    /// A structured body (device mismatches), boxed to keep errors small.
    pub body: Option<Box<response::Body>>,
}

impl ApiError {
    /// An error with a status and reason.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), body: None }
    }

    /// `BadRequest`.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(Status::BadRequest, message)
    }

    /// `Conflict` with the devices that do not match.
    pub fn mismatch(m: MismatchedDevices) -> Self {
        Self {
            status: Status::Conflict,
            message: "the device set is not the current one".into(),
            body: Some(Box::new(response::Body::MismatchedDevices(m))),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => Self::new(Status::NotFound, "not found"),
            StorageError::Conflict => Self::new(Status::Conflict, "already exists"),
            StorageError::InvalidToken => {
                Self::new(Status::Unauthorized, "the link code is invalid or has expired")
            }
            StorageError::LimitReached => Self::new(Status::LimitReached, "limit reached"),
            StorageError::QueueFull { sender_over: true } => Self::new(
                Status::LimitReached,
                "a recipient device has too many undelivered messages from you; wait until it catches up",
            ),
            StorageError::QueueFull { sender_over: false } => Self::new(
                Status::LimitReached,
                "a recipient device has too many undelivered messages",
            ),
            StorageError::StaleVersion => {
                Self::new(Status::Conflict, "a newer device list is already stored")
            }
            StorageError::Backend(e) => {
                tracing::error!(error = %e, "storage failure");
                Self::new(Status::Internal, "internal error")
            }
        }
    }
}

/// The result of a handler.
pub type ApiResult = Result<Option<response::Body>, ApiError>;

/// Requires an authenticated socket.
pub fn authed(who: Option<Authed>) -> Result<Authed, ApiError> {
    who.ok_or_else(|| ApiError::new(Status::Unauthenticated, "authenticate first"))
}

/// Applies a rate limit.
pub fn limit<D: Storage>(
    state: &AppState<D>,
    who: Authed,
    kind: Limited,
    cost: f64,
) -> Result<(), ApiError> {
    state.limiter.check(who.account, who.device, kind, cost).map_err(|retry: Duration| {
        ApiError::new(
            Status::RateLimited,
            format!("too many requests; retry in {} s", retry.as_secs().max(1)),
        )
    })
}

/// Parses an account id field.
pub fn account_id(bytes: &[u8]) -> Result<AccountId, ApiError> {
    AccountId::from_bytes(bytes).map_err(|e| ApiError::bad(e.to_string()))
}

/// SHA-256 of a secret (link tokens are 256-bit random values, so a fast hash is enough).
pub fn secret_hash(secret: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(secret).into()
}

/// Constant-time comparison of two byte strings (tokens, hashes).
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Requires that the device is one its account's signed list names (or the primary):
/// a device the relay registered but the account never signed may not send.
pub async fn listed<D: Storage>(state: &AppState<D>, who: Authed) -> Result<(), ApiError> {
    let current = state.current_devices(who.account).await?.unwrap_or_default();
    if current.iter().any(|(d, _)| *d == who.device) {
        Ok(())
    } else {
        Err(ApiError::new(
            Status::Unlisted,
            "this device is not in its account's signed device list (yet); try again once the main device has signed it",
        ))
    }
}

/// Handles a request that needs no change of the socket's identity.
pub async fn dispatch<D: Storage>(
    state: &AppState<D>,
    who: Option<Authed>,
    body: request::Body,
) -> ApiResult {
    use request::Body as B;
    match body {
        B::Ping(_) | B::RegisterAccount(_) | B::Authenticate(_) | B::RegisterDevice(_) => {
            Err(ApiError::bad("handled by the session"))
        }
        B::OpenProvisioning(_) => {
            Err(ApiError::bad("a provisioning address is for a device that is not linked yet"))
        }
        B::SendProvisioning(r) => devices::send_provisioning(state, authed(who)?, r).await,
        B::LookupAccount(r) => account::lookup(state, authed(who)?, r).await,
        B::ResetAccount(_) => Err(ApiError::bad("handled by the session")),
        B::CreateLinkToken(_) => devices::create_link_token(state, authed(who)?).await,
        B::RemoveDevice(r) => devices::remove(state, authed(who)?, r).await,
        B::GetDevices(r) => devices::get(state, authed(who)?, r).await,
        B::SetDeviceList(r) => devices::set_list(state, authed(who)?, r).await,
        B::UpdateDevice(r) => devices::update(state, authed(who)?, r).await,
        B::UploadPreKeys(r) => prekeys::upload(state, authed(who)?, r).await,
        B::GetPreKeyBundles(r) => prekeys::bundles(state, authed(who)?, r).await,
        B::GetPreKeyCounts(_) => prekeys::counts(state, authed(who)?).await,
        B::SendMessages(r) => messages::send(state, authed(who)?, r).await,
        B::CreateGroup(r) => groups::create(state, authed(who)?, r).await,
        B::UpdateGroup(r) => groups::update(state, authed(who)?, r).await,
        B::GetGroup(r) => groups::get(state, authed(who)?, r).await,
        B::AcceptGroup(r) => groups::accept(state, authed(who)?, r).await,
        B::SendGroupMessage(r) => groups::send(state, authed(who)?, r).await,
        B::GetIceServers(_) => calls::ice_servers(state, authed(who)?).await,
    }
}
