//! Accounts and device authentication.

/// Length of an account id (random, server-assigned).
pub const ACCOUNT_ID_LEN: usize = 16;

/// Creates an account; the registering device becomes its primary (device 1), and its
/// identity key is the account identity key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RegisterAccount {
    /// The unique handle people find the account by: 3–32 of `a-z 0-9 _ .`, case-insensitive.
    #[prost(string, tag = "1")]
    pub handle: String,
    /// The primary device.
    #[prost(message, optional, tag = "2")]
    pub device: Option<NewDevice>,
    /// The device's proof (`tandem_core::auth::Proof::RegisterAccount`) for this
    /// connection's challenge, by the identity key it registers.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
    /// The challenge the proof signs (`StaleChallenge` if it is another connection's).
    #[prost(bytes = "vec", tag = "4")]
    pub challenge: Vec<u8>,
}

/// Primary only: re-registers the account under a new account key. The primary's device gets
/// the new identity (which is the new account key), registration id and secret; every
/// companion is logged out; prekeys, queued messages and the signed device list are dropped.
/// Contacts see the account key change. Both the current account key and the new one sign
/// the request (`tandem_core::auth::Proof::ResetAccount`), so neither a stolen session nor a
/// foreign relay can re-register an account.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResetAccount {
    /// The primary device with its new identity.
    #[prost(message, optional, tag = "1")]
    pub device: Option<NewDevice>,
    /// The proof by the current account key.
    #[prost(bytes = "vec", tag = "2")]
    pub account_signature: Vec<u8>,
    /// The proof by the new key.
    #[prost(bytes = "vec", tag = "3")]
    pub device_signature: Vec<u8>,
    /// The challenge the proofs sign.
    #[prost(bytes = "vec", tag = "4")]
    pub challenge: Vec<u8>,
}

/// A device being registered.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NewDevice {
    /// Signal registration id, 1..=16380.
    #[prost(uint32, tag = "1")]
    pub registration_id: u32,
    /// The device's identity key (33 bytes). For a primary, also the account key. The relay
    /// keeps it to check the device's login proofs; there is no other credential. (Tag 3
    /// held a password before logins became challenge–response; it is not reused.)
    #[prost(bytes = "vec", tag = "2")]
    pub identity_key: Vec<u8>,
    /// A name people recognise ("Firefox on Linux").
    #[prost(string, tag = "4")]
    pub name: String,
    /// The platform ("web", "cli", ...).
    #[prost(string, tag = "5")]
    pub platform: String,
    /// For a companion: its ADV identity, signed by the account key and countersigned by the
    /// device (opaque to the server beyond a size check). Empty for a primary.
    #[prost(bytes = "vec", tag = "6")]
    pub adv_identity: Vec<u8>,
}

/// The new account.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Registered {
    /// The account id.
    #[prost(bytes = "vec", tag = "1")]
    pub account_id: Vec<u8>,
    /// Always 1.
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
}

/// Binds the socket to a device: the device signs this connection's challenge with its
/// identity key (`tandem_core::auth::Proof::Authenticate`). (Tag 3 held a password before;
/// it is not reused.)
#[derive(Clone, PartialEq, prost::Message)]
pub struct Authenticate {
    /// The account.
    #[prost(bytes = "vec", tag = "1")]
    pub account_id: Vec<u8>,
    /// The device.
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
    /// The XEdDSA proof over the challenge, the host and the device.
    #[prost(bytes = "vec", tag = "4")]
    pub signature: Vec<u8>,
    /// The challenge the proof signs (`StaleChallenge` if it is another connection's).
    #[prost(bytes = "vec", tag = "5")]
    pub challenge: Vec<u8>,
}

/// Who the socket now is.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Authenticated {
    /// The account.
    #[prost(bytes = "vec", tag = "1")]
    pub account_id: Vec<u8>,
    /// The device.
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
    /// The account's handle.
    #[prost(string, tag = "3")]
    pub handle: String,
}

/// Finds an account by handle.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LookupAccount {
    /// The handle (when `account_id` is empty).
    #[prost(string, tag = "1")]
    pub handle: String,
    /// Or the account id, to learn its handle.
    #[prost(bytes = "vec", tag = "2")]
    pub account_id: Vec<u8>,
}

/// An account as others see it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AccountInfo {
    /// The account id.
    #[prost(bytes = "vec", tag = "1")]
    pub account_id: Vec<u8>,
    /// The handle.
    #[prost(string, tag = "2")]
    pub handle: String,
    /// The account identity key (33 bytes).
    #[prost(bytes = "vec", tag = "3")]
    pub account_identity_key: Vec<u8>,
}
