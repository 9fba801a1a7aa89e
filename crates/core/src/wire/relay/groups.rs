//! Groups: the relay stores each group's chain of signed states (see
//! `tandem_core::group_state`) and routes one sender-key ciphertext per message to the
//! devices of the members of the newest state who accepted the group.
//!
//! The relay checks the chain as any client would, but clients trust only what they verify
//! themselves: a member row the relay adds by editing its database gets ciphertexts nobody
//! gave it the key for.

/// Most members in a group.
pub const MAX_GROUP_MEMBERS: usize = 1024;
/// Length of a group id.
pub const GROUP_ID_LEN: usize = 16;
/// Most signed states in one [`GroupStates`] answer.
pub const MAX_STATES_PER_ANSWER: usize = 64;

/// Creates a group from its first signed state (version 1, signed by an admin in it). The
/// creator has accepted it; the other members are invited and get its messages only after
/// they accept ([`AcceptGroup`]).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateGroup {
    /// The `SignedGroupState` bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub signed_state: Vec<u8>,
}

/// Publishes the next signed state of a group (version one more than the relay's newest,
/// naming its digest). `Conflict` when another change came first: fetch and retry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateGroup {
    /// The `SignedGroupState` bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub signed_state: Vec<u8>,
}

/// Asks for a group's signed states newer than `after_version` (members only, including
/// members who have not accepted yet).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetGroup {
    /// The group.
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    /// The newest version the client has (0 for none).
    #[prost(uint64, tag = "2")]
    pub after_version: u64,
}

/// An invited member accepts a group (its messages are routed to it from now on), or
/// declines it (`accept` false: it leaves the relay's routing; the admins' signed state
/// still names it until an admin or the member itself signs it out).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AcceptGroup {
    /// The group.
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    /// Accept (true) or decline (false).
    #[prost(bool, tag = "2")]
    pub accept: bool,
}

/// Signed states of a group, oldest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupStates {
    /// The group.
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    /// `SignedGroupState` bytes, versions `after_version + 1` onwards, at most
    /// [`MAX_STATES_PER_ANSWER`].
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub states: Vec<Vec<u8>>,
    /// The newest version the relay holds (more to fetch while it exceeds the last sent).
    #[prost(uint64, tag = "3")]
    pub latest_version: u64,
    /// Whether the asking account accepted the group.
    #[prost(bool, tag = "4")]
    pub accepted: bool,
}

/// One sender-key ciphertext for the whole group; the server queues it for every device of
/// every accepted member except the sending device.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SendGroupMessage {
    /// The group.
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    /// The sender's timestamp.
    #[prost(uint64, tag = "2")]
    pub timestamp: u64,
    /// The `SenderKeyMessage`.
    #[prost(bytes = "vec", tag = "3")]
    pub content: Vec<u8>,
    /// The version of the group state the sender encrypted for: refused (`Conflict`) when
    /// the relay holds a newer one, so the sender learns of changes before it sends.
    #[prost(uint64, tag = "4")]
    pub version: u64,
    /// The devices the sender shared its key with: for every member of that state, in
    /// ascending account order, the [`device_set_tag`] of the member's devices (the
    /// sender's own sending device left out), 8 bytes each. The relay refuses the send
    /// (`Conflict`, with [`MismatchedDevices`](super::messages::MismatchedDevices) naming the
    /// members whose devices differ) when its current devices differ, so the sender learns
    /// of a new device (which needs the key), a removed one (the key is replaced) or a new
    /// account key (the send waits for the person) before the message goes out. Empty: no
    /// check (the sender alone loses by skipping it).
    #[prost(bytes = "vec", tag = "5")]
    pub member_devices: Vec<u8>,
}

/// Length of one [`device_set_tag`].
pub const DEVICE_SET_TAG_LEN: usize = 8;

/// A short digest of one account's devices, `(device id, registration id)` in any order:
/// the first 8 bytes of SHA-256 over the account id, then each device's id and
/// registration id (big-endian) in ascending device order.
pub fn device_set_tag(
    account: &crate::AccountId,
    devices: impl IntoIterator<Item = (u32, u32)>,
) -> [u8; DEVICE_SET_TAG_LEN] {
    use sha2::Digest;
    let mut list: Vec<(u32, u32)> = devices.into_iter().collect();
    list.sort_unstable();
    let mut h = sha2::Sha256::new();
    h.update(b"tandem group device set");
    h.update(account.0);
    for (device, registration) in list {
        h.update(device.to_be_bytes());
        h.update(registration.to_be_bytes());
    }
    let digest = h.finalize();
    let mut tag = [0u8; DEVICE_SET_TAG_LEN];
    tag.copy_from_slice(&digest[..DEVICE_SET_TAG_LEN]);
    tag
}
