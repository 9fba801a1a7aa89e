//! Companion devices, device lists and the signed device list (ADV).

use super::account::NewDevice;

/// The most companions an account may have.
pub const MAX_COMPANIONS: u32 = 4;

/// Primary only: asks for a single-use token to register one companion.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateLinkToken {}

/// A single-use companion registration token.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinkToken {
    /// 32 random bytes; the server stores a hash.
    #[prost(bytes = "vec", tag = "1")]
    pub token: Vec<u8>,
    /// When it stops working.
    #[prost(uint64, tag = "2")]
    pub expires_at_ms: u64,
    /// Companions linked now.
    #[prost(uint32, tag = "3")]
    pub companions: u32,
    /// The limit ([`MAX_COMPANIONS`]).
    #[prost(uint32, tag = "4")]
    pub max_companions: u32,
}

/// Registers a companion with a link token from the primary.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RegisterDevice {
    /// The account to join.
    #[prost(bytes = "vec", tag = "1")]
    pub account_id: Vec<u8>,
    /// The token from [`LinkToken`].
    #[prost(bytes = "vec", tag = "2")]
    pub link_token: Vec<u8>,
    /// The companion.
    #[prost(message, optional, tag = "3")]
    pub device: Option<NewDevice>,
    /// The companion's proof (`tandem_core::auth::Proof::RegisterDevice`) for this
    /// connection's challenge, by the identity key it registers.
    #[prost(bytes = "vec", tag = "4")]
    pub signature: Vec<u8>,
    /// The challenge the proof signs (`StaleChallenge` if it is another connection's).
    #[prost(bytes = "vec", tag = "5")]
    pub challenge: Vec<u8>,
}

/// The companion's assigned device id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceRegistered {
    /// 2..=127.
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
}

/// Removes a device: the primary removes a companion, a companion removes itself. Its
/// credentials stop working at once and its socket is closed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoveDevice {
    /// The device to remove.
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
}

/// Renames the authenticated device.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateDevice {
    /// The new name.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// Asks for an account's devices.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetDevices {
    /// The account.
    #[prost(bytes = "vec", tag = "1")]
    pub account_id: Vec<u8>,
    /// Set when the fetch checks the sender of something received: such fetches draw on a
    /// budget of their own, so traffic from strangers never uses up the lookups this device
    /// needs to send.
    #[prost(bool, tag = "2")]
    pub incoming: bool,
}

/// An account's devices as the server has them. Clients trust nothing here that the
/// account key did not sign.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Devices {
    /// The account.
    #[prost(bytes = "vec", tag = "1")]
    pub account_id: Vec<u8>,
    /// The account identity key.
    #[prost(bytes = "vec", tag = "2")]
    pub account_identity_key: Vec<u8>,
    /// The latest device list the primary signed (empty if none yet).
    #[prost(bytes = "vec", tag = "3")]
    pub signed_device_list: Vec<u8>,
    /// Registered devices, primary first.
    #[prost(message, repeated, tag = "4")]
    pub devices: Vec<DeviceInfo>,
}

/// One registered device.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceInfo {
    /// The device id.
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
    /// Its registration id.
    #[prost(uint32, tag = "2")]
    pub registration_id: u32,
    /// Its identity key.
    #[prost(bytes = "vec", tag = "3")]
    pub identity_key: Vec<u8>,
    /// Its ADV identity (empty for the primary).
    #[prost(bytes = "vec", tag = "4")]
    pub adv_identity: Vec<u8>,
    /// Its name (only sent to the account's own devices).
    #[prost(string, tag = "5")]
    pub name: String,
    /// Its platform (only sent to the account's own devices).
    #[prost(string, tag = "6")]
    pub platform: String,
    /// When it was linked.
    #[prost(uint64, tag = "7")]
    pub created_at_ms: u64,
    /// When it last had a connection (only sent to the account's own devices).
    #[prost(uint64, tag = "8")]
    pub last_seen_ms: u64,
}

/// Primary only: publishes a new signed device list. The server checks the signature under
/// the account key and that the version only grows.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SetDeviceList {
    /// The signed list (`tandem_core::devices::SignedDeviceList` bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub signed_device_list: Vec<u8>,
}

/// Told to a device just before its socket closes because it was removed, and in the body
/// of the `Unauthorized` answer when a removed device tries to log in. The account's current
/// signed device list comes with it: a companion deletes its data only when that list,
/// signed by the account key, revokes its key index.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceRemoved {
    /// The account's signed device list as the relay has it (may be empty or stale: the
    /// device checks it).
    #[prost(bytes = "vec", tag = "1")]
    pub signed_device_list: Vec<u8>,
}

/// Before authentication: asks for a provisioning address, where a primary can deliver one
/// link message to this socket. Asking again replaces the previous address.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OpenProvisioning {}

/// A provisioning address; it works once, while the socket is open and until it expires.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProvisioningAddress {
    /// 16 random bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub address: Vec<u8>,
    /// When the server forgets it (server clock).
    #[prost(uint64, tag = "2")]
    pub expires_at_ms: u64,
}

/// Primary only: delivers an (end-to-end encrypted) link message to a provisioning address.
/// Answered `NotFound` when the address expired, was replaced or was used.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SendProvisioning {
    /// The address from the companion's link code.
    #[prost(bytes = "vec", tag = "1")]
    pub address: Vec<u8>,
    /// The sealed link message, at most [`MAX_PROVISIONING_MESSAGE`] bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub message: Vec<u8>,
}

/// The longest link message the relay carries.
pub const MAX_PROVISIONING_MESSAGE: usize = 8 * 1024;

/// Pushed to the socket holding a provisioning address: the link message sent to it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProvisioningMessage {
    /// The sealed link message, as the primary sent it.
    #[prost(bytes = "vec", tag = "1")]
    pub message: Vec<u8>,
}

/// Pushed to an account's remaining connected devices when a companion was logged out: the
/// primary signs a new device list without it, the others refresh theirs. Device id 0 means
/// "the account's devices changed; compare them again" (sent when a notice could not be
/// queued for a slow socket).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceUnlinked {
    /// The removed device, or 0.
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
}

/// Pushed to an account's connected devices when a companion registered: the primary signs
/// a new device list, the others refresh theirs. Device id 0: see [`DeviceUnlinked`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceLinked {
    /// The new device, or 0.
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
}
