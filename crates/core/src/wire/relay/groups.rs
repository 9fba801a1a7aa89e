//! Groups: membership on the server, one sender-key ciphertext per message.

/// Most members in a group.
pub const MAX_GROUP_MEMBERS: usize = 1024;
/// Length of a group id.
pub const GROUP_ID_LEN: usize = 16;

/// Creates a group; the creator is its first admin.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateGroup {
    /// Other members' account ids.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub members: Vec<Vec<u8>>,
}

/// Changes membership (admins only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModifyGroup {
    /// The group.
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    /// Accounts to add.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub add: Vec<Vec<u8>>,
    /// Accounts to remove.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub remove: Vec<Vec<u8>>,
    /// Members to make admins.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub make_admin: Vec<Vec<u8>>,
}

/// Asks for a group's membership (members only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetGroup {
    /// The group.
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
}

/// A group's membership.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Group {
    /// The group id.
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    /// Its members.
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<GroupMember>,
    /// Grows with every membership change.
    #[prost(uint64, tag = "3")]
    pub version: u64,
}

/// One member.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupMember {
    /// The account.
    #[prost(bytes = "vec", tag = "1")]
    pub account_id: Vec<u8>,
    /// Whether it may change membership.
    #[prost(bool, tag = "2")]
    pub admin: bool,
}

/// One sender-key ciphertext for the whole group; the server queues it for every device of
/// every member except the sending device.
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
}
