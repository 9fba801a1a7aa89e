//! Prekeys on the server.

/// Most one-time prekeys (of each kind) a device may keep on the server.
pub const MAX_STORED_PREKEYS: u32 = 1000;
/// Most prekeys accepted in one upload.
pub const MAX_PREKEYS_PER_UPLOAD: usize = 200;

/// A public signed Curve25519 prekey.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignedPreKeyMessage {
    /// Its id.
    #[prost(uint32, tag = "1")]
    pub key_id: u32,
    /// 33 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    /// 64 bytes, by the device's identity key.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
}

/// A public one-time Curve25519 prekey.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OneTimePreKeyMessage {
    /// Its id.
    #[prost(uint32, tag = "1")]
    pub key_id: u32,
    /// 33 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
}

/// A public Kyber1024 prekey.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KyberPreKeyMessage {
    /// Its id.
    #[prost(uint32, tag = "1")]
    pub key_id: u32,
    /// 1569 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    /// 64 bytes, by the device's identity key.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
}

/// Uploads prekeys for the authenticated device. A new signed or last-resort key replaces
/// the old one; one-time keys are added.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UploadPreKeys {
    /// A new signed prekey.
    #[prost(message, optional, tag = "1")]
    pub signed_pre_key: Option<SignedPreKeyMessage>,
    /// One-time Curve25519 prekeys.
    #[prost(message, repeated, tag = "2")]
    pub one_time: Vec<OneTimePreKeyMessage>,
    /// One-time Kyber prekeys.
    #[prost(message, repeated, tag = "3")]
    pub kyber: Vec<KyberPreKeyMessage>,
    /// A new last-resort Kyber prekey.
    #[prost(message, optional, tag = "4")]
    pub last_resort_kyber: Option<KyberPreKeyMessage>,
}

/// Asks for bundles (each one-time key is handed out once).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetPreKeyBundles {
    /// The account.
    #[prost(bytes = "vec", tag = "1")]
    pub account_id: Vec<u8>,
    /// The devices wanted; empty means all.
    #[prost(uint32, repeated, tag = "2")]
    pub device_ids: Vec<u32>,
}

/// Bundles for the asked devices that have keys.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PreKeyBundles {
    /// One per device.
    #[prost(message, repeated, tag = "1")]
    pub bundles: Vec<PreKeyBundleMessage>,
}

/// What a sender needs to start a session with one device.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PreKeyBundleMessage {
    /// The device.
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
    /// Its registration id.
    #[prost(uint32, tag = "2")]
    pub registration_id: u32,
    /// Its identity key.
    #[prost(bytes = "vec", tag = "3")]
    pub identity_key: Vec<u8>,
    /// Its signed prekey.
    #[prost(message, optional, tag = "4")]
    pub signed_pre_key: Option<SignedPreKeyMessage>,
    /// A one-time prekey, while any are left.
    #[prost(message, optional, tag = "5")]
    pub one_time: Option<OneTimePreKeyMessage>,
    /// A one-time Kyber prekey, or the last-resort one.
    #[prost(message, optional, tag = "6")]
    pub kyber: Option<KyberPreKeyMessage>,
}

/// Asks how many prekeys the authenticated device has left.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetPreKeyCounts {}

/// Prekeys left, so the device refills in time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PreKeyCounts {
    /// One-time Curve25519 prekeys.
    #[prost(uint32, tag = "1")]
    pub one_time: u32,
    /// One-time Kyber prekeys.
    #[prost(uint32, tag = "2")]
    pub kyber: u32,
    /// Whether a signed prekey is stored.
    #[prost(bool, tag = "3")]
    pub has_signed: bool,
    /// Whether a last-resort Kyber prekey is stored.
    #[prost(bool, tag = "4")]
    pub has_last_resort: bool,
}
