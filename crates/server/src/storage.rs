//! Server storage behind one trait; SQLite (embedded, WAL, group commit) is the default
//! backend, and the trait is shaped so a PostgreSQL backend can follow: it speaks only in
//! rows and [`StorageError`] (no SQL, no backend error types), every method is atomic on its
//! own, and `storage/conformance.rs` holds the checks any backend must pass (the SQLite backend runs
//! them in its tests).
//!
//! Everything the relay persists is here: accounts, devices and their hashed secrets, link
//! tokens, prekeys, per-device message queues with expiry, and groups. Message contents are
//! opaque ciphertexts.

#[cfg(test)]
pub(crate) mod conformance;
mod sqlite;
mod writer;

use std::future::Future;

pub use sqlite::SqliteStorage;
use tandem_core::AccountId;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A unique value is taken (e.g. a handle).
    #[error("already exists")]
    Conflict,
    /// A link token is unknown, used or expired.
    #[error("link token is invalid or expired")]
    InvalidToken,
    /// A limit is reached (companions, groups).
    #[error("limit reached")]
    LimitReached,
    /// A recipient device's queue is full: `sender_over` when the sending account holds
    /// more than its share of it (then only that sender is refused).
    #[error("a recipient's queue is full")]
    QueueFull {
        /// The sender exceeded its own quota in that queue.
        sender_over: bool,
    },
    /// The device list version does not grow.
    #[error("device list version must grow")]
    StaleVersion,
    /// The backend failed.
    #[error("database: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// A device as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRow {
    /// Device id.
    pub device_id: u32,
    /// Registration id.
    pub registration_id: u32,
    /// Identity key (33 bytes).
    pub identity_key: Vec<u8>,
    /// ADV identity (empty for the primary).
    pub adv_identity: Vec<u8>,
    /// Name.
    pub name: String,
    /// Platform.
    pub platform: String,
    /// Linked at (ms).
    pub created_at: u64,
    /// Last connection (ms).
    pub last_seen: u64,
}

/// An account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRow {
    /// Id.
    pub id: AccountId,
    /// Handle.
    pub handle: String,
    /// Account identity key.
    pub identity_key: Vec<u8>,
    /// Latest signed device list (empty if none).
    pub signed_device_list: Vec<u8>,
    /// Its version.
    pub device_list_version: u64,
}

/// A public prekey as stored (signature empty for one-time Curve25519 keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyRow {
    /// Key id.
    pub key_id: u32,
    /// Public key.
    pub public_key: Vec<u8>,
    /// Signature by the device identity key.
    pub signature: Vec<u8>,
}

/// Prekeys uploaded at once.
#[derive(Clone, Debug, Default)]
pub struct PreKeyUpload {
    /// Replaces the signed prekey.
    pub signed: Option<PreKeyRow>,
    /// Added one-time keys.
    pub one_time: Vec<PreKeyRow>,
    /// Added one-time Kyber keys.
    pub kyber: Vec<PreKeyRow>,
    /// Replaces the last-resort Kyber key.
    pub last_resort: Option<PreKeyRow>,
}

/// One device's bundle, with its one-time keys already taken out of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleRow {
    /// Device id.
    pub device_id: u32,
    /// Registration id.
    pub registration_id: u32,
    /// Identity key.
    pub identity_key: Vec<u8>,
    /// Signed prekey.
    pub signed: Option<PreKeyRow>,
    /// A one-time key, while any are left.
    pub one_time: Option<PreKeyRow>,
    /// A one-time Kyber key, or the last-resort one.
    pub kyber: Option<PreKeyRow>,
}

/// Remaining prekeys of a device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PreKeyCountsRow {
    /// One-time Curve25519 keys.
    pub one_time: u32,
    /// One-time Kyber keys.
    pub kyber: u32,
    /// Signed prekey present.
    pub has_signed: bool,
    /// Last-resort Kyber key present.
    pub has_last_resort: bool,
}

/// A copy of a message for one device queue.
#[derive(Clone, Debug)]
pub struct QueueInsert {
    /// The device's account.
    pub account_id: AccountId,
    /// The device.
    pub device_id: u32,
    /// The sending account (its share of the queue is counted).
    pub sender: AccountId,
    /// `Envelope` protobuf without its id.
    pub envelope: bytes::Bytes,
}

/// How much one device queue may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Copies in the queue.
    pub max_len: u64,
    /// Bytes in the queue.
    pub max_bytes: u64,
    /// Copies one sending account may have in the queue.
    pub max_len_per_sender: u64,
    /// Bytes one sending account may have in the queue.
    pub max_bytes_per_sender: u64,
}

/// An expired message a device must be told about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiredRow {
    /// The tombstone's id (to acknowledge it by).
    pub id: u64,
    /// Sender account.
    pub source_account: Vec<u8>,
    /// Sender device.
    pub source_device: u32,
    /// Sender timestamp.
    pub client_timestamp: u64,
    /// The group, for a group message (else empty).
    pub group_id: Vec<u8>,
}

/// A group member as the relay routes to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRow {
    /// Account.
    pub account_id: AccountId,
    /// Whether it accepted the group (only then is it routed to).
    pub accepted: bool,
}

/// A group's newest state as the relay holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRow {
    /// Its version.
    pub version: u64,
    /// The `SignedGroupState` bytes.
    pub state: Vec<u8>,
}

/// What a new device row holds.
#[derive(Clone, Debug)]
pub struct NewDeviceRow {
    /// Registration id.
    pub registration_id: u32,
    /// Identity key.
    pub identity_key: Vec<u8>,
    /// ADV identity.
    pub adv_identity: Vec<u8>,
    /// Name.
    pub name: String,
    /// Platform.
    pub platform: String,
}

/// A copy that was just committed to a queue: `(account, device, queue id, envelope)`.
pub type Committed = (AccountId, u32, u64, bytes::Bytes);

/// Told about committed copies, in commit order (so each device's ids arrive increasing).
pub type CommitListener = std::sync::Arc<dyn Fn(Vec<Committed>) + Send + Sync>;

/// Counters of the queue's group commit, for `/metrics` and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteStats {
    /// Transactions committed.
    pub commits: u64,
    /// Sends and acknowledgements folded into those transactions.
    pub operations: u64,
    /// Queue rows inserted.
    pub inserted: u64,
    /// Queue rows deleted by acknowledgements.
    pub deleted: u64,
}

/// Everything the relay persists. Methods are atomic on their own.
pub trait Storage: Clone + Send + Sync + 'static {
    /// Registers the function told about every committed queue copy, in commit order.
    fn set_commit_listener(&self, listener: CommitListener);

    /// Checks the database answers.
    fn ping(&self) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// This server's instance id.
    fn instance_id(&self) -> impl Future<Output = Result<String, StorageError>> + Send;
    /// Closes the backend cleanly, after pending writes.
    fn close(&self) -> impl Future<Output = ()> + Send;

    /// Creates an account with its primary; [`StorageError::Conflict`] if the handle is taken.
    fn create_account(
        &self,
        id: AccountId,
        handle: &str,
        primary: NewDeviceRow,
        now: u64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Re-registers `account` under the primary's new identity: the account key becomes it,
    /// the primary's row takes its identity, registration id and secret, companions are
    /// deleted, every device's prekeys and queued messages and the signed device list are
    /// dropped. Returns the removed companions.
    fn reset_account(
        &self,
        account: AccountId,
        primary: NewDeviceRow,
    ) -> impl Future<Output = Result<Vec<u32>, StorageError>> + Send;
    /// An account by id.
    fn account(
        &self,
        id: AccountId,
    ) -> impl Future<Output = Result<Option<AccountRow>, StorageError>> + Send;
    /// An account by (lowercase) handle.
    fn account_by_handle(
        &self,
        handle: &str,
    ) -> impl Future<Output = Result<Option<AccountRow>, StorageError>> + Send;

    /// One device.
    fn device(
        &self,
        account: AccountId,
        device: u32,
    ) -> impl Future<Output = Result<Option<DeviceRow>, StorageError>> + Send;
    /// All devices of an account, primary first.
    fn devices(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<Vec<DeviceRow>, StorageError>> + Send;
    /// Stores a link token hash valid until `expires_at`, unless the account holds
    /// `max_open` unexpired tokens already ([`StorageError::LimitReached`]).
    fn create_link_token(
        &self,
        account: AccountId,
        token_hash: [u8; 32],
        now: u64,
        expires_at: u64,
        max_open: u64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Consumes a link token and registers a companion (at most `max_companions`).
    fn register_device(
        &self,
        account: AccountId,
        token_hash: [u8; 32],
        device: NewDeviceRow,
        now: u64,
        max_companions: u32,
    ) -> impl Future<Output = Result<u32, StorageError>> + Send;
    /// Removes a device with its prekeys and queue; `false` if there was none.
    fn remove_device(
        &self,
        account: AccountId,
        device: u32,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// Stores a new signed device list if its version grows.
    fn set_device_list(
        &self,
        account: AccountId,
        list: &[u8],
        version: u64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Renames a device.
    fn rename_device(
        &self,
        account: AccountId,
        device: u32,
        name: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Records a connection.
    fn touch_device(
        &self,
        account: AccountId,
        device: u32,
        now: u64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Stores uploaded prekeys (one-time keys beyond `max_stored` are refused).
    fn upload_prekeys(
        &self,
        account: AccountId,
        device: u32,
        upload: PreKeyUpload,
        max_stored: u32,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Bundles for `devices` (all when empty), taking one one-time key of each kind.
    fn take_bundles(
        &self,
        account: AccountId,
        devices: &[u32],
    ) -> impl Future<Output = Result<Vec<BundleRow>, StorageError>> + Send;
    /// Remaining prekeys.
    fn prekey_counts(
        &self,
        account: AccountId,
        device: u32,
    ) -> impl Future<Output = Result<PreKeyCountsRow, StorageError>> + Send;

    /// Durably appends copies to device queues (group-committed); returns the ids of the
    /// copies stored, in order. A copy for a device that no longer exists is dropped. If a
    /// copy would take a queue over `limits`, nothing is stored and the answer is
    /// [`StorageError::QueueFull`]; the check and the insert are one step of the writer,
    /// so concurrent sends cannot overfill a queue.
    fn enqueue(
        &self,
        rows: Vec<QueueInsert>,
        expires_at: u64,
        limits: QueueLimits,
    ) -> impl Future<Output = Result<Vec<u64>, StorageError>> + Send;
    /// Up to `limit` queued envelopes after `after`, oldest first.
    fn fetch_queue(
        &self,
        account: AccountId,
        device: u32,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(u64, bytes::Bytes)>, StorageError>> + Send;
    /// Deletes acknowledged envelopes of this device (others' ids are ignored).
    fn ack(
        &self,
        account: AccountId,
        device: u32,
        ids: Vec<u64>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Deletes acknowledged envelopes of this device in the next commit, without waiting for
    /// it (the socket's hot path). A crash before that commit delivers them again, which
    /// clients absorb by de-duplication.
    fn ack_later(&self, account: AccountId, device: u32, ids: Vec<u64>)
    -> Result<(), StorageError>;
    /// Total queued copies, from the writer's counters (no table scan).
    fn queue_total(&self) -> u64;
    /// Group-commit counters since the storage was opened.
    fn write_stats(&self) -> WriteStats;
    /// Moves envelopes past their expiry into tombstones, and drops tombstones older than
    /// `tombstone_before` (of devices that never came back); returns how many envelopes
    /// expired.
    fn expire(
        &self,
        now: u64,
        tombstone_before: u64,
    ) -> impl Future<Output = Result<u64, StorageError>> + Send;
    /// Up to `limit` tombstones of a device, oldest first (they stay until acknowledged).
    fn expired(
        &self,
        account: AccountId,
        device: u32,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ExpiredRow>, StorageError>> + Send;
    /// Deletes acknowledged tombstones of this device.
    fn ack_expired(
        &self,
        account: AccountId,
        device: u32,
        ids: &[u64],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Creates a group from its first state: `creator` accepted, the other `members` are
    /// invited. [`StorageError::LimitReached`] when `creator` already created `max_created`
    /// groups; [`StorageError::Conflict`] when the id is taken.
    #[allow(clippy::too_many_arguments)]
    fn create_group(
        &self,
        id: [u8; 16],
        creator: AccountId,
        members: &[AccountId],
        state: &[u8],
        now: u64,
        max_created: u64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// A group's newest state.
    fn group(
        &self,
        id: [u8; 16],
    ) -> impl Future<Output = Result<Option<GroupRow>, StorageError>> + Send;
    /// A group's states with versions above `after`, oldest first, at most `limit`.
    fn group_states(
        &self,
        id: [u8; 16],
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StorageError>> + Send;
    /// A group's members as routed to.
    fn group_members(
        &self,
        id: [u8; 16],
    ) -> impl Future<Output = Result<Vec<MemberRow>, StorageError>> + Send;
    /// Stores the state after `version` (which must still be the newest, else
    /// [`StorageError::Conflict`]) and makes `members` the routed members: members that stay
    /// keep their acceptance, new ones are invited.
    fn update_group(
        &self,
        id: [u8; 16],
        version: u64,
        state: &[u8],
        members: &[AccountId],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Records that `account` accepted (or declined) a group it is a member of; `false` if it
    /// is not a member.
    fn accept_group(
        &self,
        id: [u8; 16],
        account: AccountId,
        accept: bool,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
}
