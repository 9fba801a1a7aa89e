//! Signed group state: who is in a group, who administers it, its title and version, signed
//! by a device of an admin so that the relay can neither add a member nor roll a change back.
//!
//! - The creator signs version 1, in which it is an admin ([`SignedGroupState::check_genesis`]).
//! - Every later version names the digest of the one before and is signed by an admin of
//!   that one; a member who is not an admin may sign only the version that removes itself
//!   ([`GroupState::check_successor`]).
//! - A state is signed by one device of the signing account: the primary with the account
//!   key itself, a companion with its identity key, carrying its ADV identity (signed by the
//!   account key) so that anyone who knows the account key can check it
//!   ([`SignedGroupState::verify`]).
//!
//! Clients keep the newest state they verified and accept only its successors, so an older
//! state is refused as a rollback. Senders hand their sender key only to members of the
//! verified state, and accept group messages only from them.

use prost::Message;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use crate::devices::{AdvError, SignedDeviceIdentity};
use crate::wire::relay::{GROUP_ID_LEN, MAX_GROUP_MEMBERS};
use tandem_signal::Timestamp;
use tandem_signal::{AccountId, DeviceId};
use tandem_signal::{IdentityKey, IdentityKeyPair};

/// Domain separation for group state signatures.
pub const GROUP_STATE_PREFIX: &[u8] = b"Tandem group state v1\x00";
/// Longest group title, in characters.
pub const MAX_GROUP_TITLE_CHARS: usize = 100;
/// Largest signed group state accepted, in bytes (1 024 members fit with room).
pub const MAX_GROUP_STATE_LEN: usize = 64 * 1024;

/// Why a group state was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupStateError {
    /// The bytes do not parse, or a field is out of range.
    #[error("malformed group state: {0}")]
    Malformed(&'static str),
    /// The signature does not verify under the key that should have made it.
    #[error("the group state is not signed by the device it names")]
    BadSignature,
    /// The signing device's ADV identity does not verify under its account key.
    #[error("the group state's signer is not a device of its account: {0}")]
    Adv(AdvError),
    /// The state is for another group.
    #[error("the group state is for another group")]
    WrongGroup,
    /// The version is not the next one (a rollback, a replay or a gap).
    #[error("group version {found} does not follow version {current}")]
    NotNext {
        /// The version held.
        current: u64,
        /// The version offered.
        found: u64,
    },
    /// The state does not name the one held as its predecessor (a fork).
    #[error("the group state does not follow the one this device has")]
    Fork,
    /// The signer was not allowed to make this change.
    #[error("the signer may not make this change to the group")]
    NotAllowed,
}

#[derive(Clone, PartialEq, prost::Message)]
struct MemberProto {
    #[prost(bytes = "vec", tag = "1")]
    account_id: Vec<u8>,
    #[prost(bool, tag = "2")]
    admin: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StateProto {
    #[prost(bytes = "vec", tag = "1")]
    group_id: Vec<u8>,
    #[prost(uint64, tag = "2")]
    version: u64,
    #[prost(bytes = "vec", tag = "3")]
    previous: Vec<u8>,
    #[prost(string, tag = "4")]
    title: String,
    #[prost(message, repeated, tag = "5")]
    members: Vec<MemberProto>,
    #[prost(bytes = "vec", tag = "6")]
    signer_account: Vec<u8>,
    #[prost(uint32, tag = "7")]
    signer_device: u32,
    #[prost(uint64, tag = "8")]
    timestamp: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SignedProto {
    #[prost(bytes = "vec", tag = "1")]
    state: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    signature: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    signer_adv: Vec<u8>,
}

/// One member of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupMember {
    /// The account.
    pub account_id: AccountId,
    /// Whether it may change the group.
    pub admin: bool,
}

/// A group as one version of its signed state describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupState {
    /// The group.
    pub group_id: [u8; GROUP_ID_LEN],
    /// 1 for a new group, one more for every change.
    pub version: u64,
    /// SHA-256 of the previous signed state (zeros for version 1).
    pub previous: [u8; 32],
    /// The title people see.
    pub title: String,
    /// The members, sorted by account, each once.
    pub members: Vec<GroupMember>,
    /// The account that signed this version.
    pub signer: AccountId,
    /// The device of that account that signed it.
    pub signer_device: DeviceId,
    /// When it was signed (the signer's message clock); with the signer it identifies the
    /// change, e.g. for the line shown in the chat.
    pub timestamp: u64,
}

impl GroupState {
    /// The member entry of `account`, if it is a member.
    pub fn member(&self, account: &AccountId) -> Option<&GroupMember> {
        self.members
            .binary_search_by(|m| m.account_id.cmp(account))
            .ok()
            .and_then(|i| self.members.get(i))
    }

    /// Whether `account` is a member.
    pub fn is_member(&self, account: &AccountId) -> bool {
        self.member(account).is_some()
    }

    /// Whether `account` is an admin.
    pub fn is_admin(&self, account: &AccountId) -> bool {
        self.member(account).is_some_and(|m| m.admin)
    }

    /// The member accounts.
    pub fn accounts(&self) -> impl Iterator<Item = AccountId> + '_ {
        self.members.iter().map(|m| m.account_id)
    }

    /// Checks that `next` may follow this state (same group, next version, names this
    /// state's digest `digest` as its predecessor, and its signer was allowed to make the
    /// change: an admin of this version any change; any other member only leaving).
    pub fn check_successor(
        &self,
        digest: &[u8; 32],
        next: &GroupState,
    ) -> Result<(), GroupStateError> {
        if next.group_id != self.group_id {
            return Err(GroupStateError::WrongGroup);
        }
        if next.version != self.version.saturating_add(1) {
            return Err(GroupStateError::NotNext { current: self.version, found: next.version });
        }
        if next.previous != *digest {
            return Err(GroupStateError::Fork);
        }
        if self.is_admin(&next.signer) {
            return Ok(());
        }
        let leaving = self.is_member(&next.signer)
            && next.title == self.title
            && next.members.len() + 1 == self.members.len()
            && self.members.iter().filter(|m| m.account_id != next.signer).eq(next.members.iter());
        if leaving { Ok(()) } else { Err(GroupStateError::NotAllowed) }
    }

    fn check_shape(&self) -> Result<(), GroupStateError> {
        if self.version == 0 {
            return Err(GroupStateError::Malformed("version 0"));
        }
        if self.version == 1 && self.previous != [0; 32] {
            return Err(GroupStateError::Malformed("a first version names a predecessor"));
        }
        if self.title.chars().count() > MAX_GROUP_TITLE_CHARS
            || self.title.chars().any(char::is_control)
        {
            return Err(GroupStateError::Malformed("title"));
        }
        if self.members.len() > MAX_GROUP_MEMBERS {
            return Err(GroupStateError::Malformed("too many members"));
        }
        if self.members.windows(2).any(|w| w[0].account_id >= w[1].account_id) {
            return Err(GroupStateError::Malformed("members not sorted or repeated"));
        }
        // A group that still has members always has an admin; the last member may leave.
        if !self.members.is_empty() && !self.members.iter().any(|m| m.admin) {
            return Err(GroupStateError::Malformed("no admin"));
        }
        Ok(())
    }
}

/// A group state with its signature, as it travels and is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedGroupState {
    state: GroupState,
    state_bytes: Vec<u8>,
    signature: [u8; 64],
    signer_adv: Option<SignedDeviceIdentity>,
    bytes: Vec<u8>,
}

/// A state whose signature verified: what it says, and which key index of the signing
/// account signed it (for companions, to check against the account's revocations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedGroupState<'a> {
    /// The state.
    pub state: &'a GroupState,
    /// The signing device's identity key.
    pub signer_key: IdentityKey,
    /// The signing companion's key index (`None` for the primary).
    pub signer_key_index: Option<u32>,
}

impl SignedGroupState {
    /// Signs `state` with this device's identity. A companion passes its ADV identity (as
    /// the account signed it); the primary passes `None`.
    pub fn sign(
        state: GroupState,
        identity: &IdentityKeyPair,
        signer_adv: Option<SignedDeviceIdentity>,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, GroupStateError> {
        state.check_shape()?;
        let state_bytes = StateProto {
            group_id: state.group_id.to_vec(),
            version: state.version,
            previous: if state.version == 1 { Vec::new() } else { state.previous.to_vec() },
            title: state.title.clone(),
            members: state
                .members
                .iter()
                .map(|m| MemberProto { account_id: m.account_id.0.to_vec(), admin: m.admin })
                .collect(),
            signer_account: state.signer.0.to_vec(),
            signer_device: state.signer_device.get(),
            timestamp: state.timestamp,
        }
        .encode_to_vec();
        let signature = identity.private_key().sign_parts(&[GROUP_STATE_PREFIX, &state_bytes], rng);
        let bytes = SignedProto {
            state: state_bytes.clone(),
            signature: signature.to_vec(),
            signer_adv: signer_adv.as_ref().map(SignedDeviceIdentity::to_bytes).unwrap_or_default(),
        }
        .encode_to_vec();
        if bytes.len() > MAX_GROUP_STATE_LEN {
            return Err(GroupStateError::Malformed("too large"));
        }
        Ok(Self { state, state_bytes, signature, signer_adv, bytes })
    }

    /// Parses (without verifying the signature; see [`verify`](Self::verify)). Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GroupStateError> {
        let bad = GroupStateError::Malformed;
        if bytes.len() > MAX_GROUP_STATE_LEN {
            return Err(bad("too large"));
        }
        let signed = SignedProto::decode(bytes).map_err(|_| bad("signed state"))?;
        let p = StateProto::decode(signed.state.as_slice()).map_err(|_| bad("state"))?;
        let group_id =
            <[u8; GROUP_ID_LEN]>::try_from(p.group_id.as_slice()).map_err(|_| bad("group id"))?;
        let previous = match (p.version, p.previous.as_slice()) {
            (1, []) => [0; 32],
            (_, prev) => <[u8; 32]>::try_from(prev).map_err(|_| bad("previous"))?,
        };
        let members = p
            .members
            .iter()
            .map(|m| {
                Ok(GroupMember {
                    account_id: AccountId::from_bytes(&m.account_id).map_err(|_| bad("member"))?,
                    admin: m.admin,
                })
            })
            .collect::<Result<Vec<_>, GroupStateError>>()?;
        let state = GroupState {
            group_id,
            version: p.version,
            previous,
            title: p.title,
            members,
            signer: AccountId::from_bytes(&p.signer_account).map_err(|_| bad("signer"))?,
            signer_device: DeviceId::new(p.signer_device).map_err(|_| bad("signer device"))?,
            timestamp: p.timestamp,
        };
        state.check_shape()?;
        let signer_adv = if signed.signer_adv.is_empty() {
            None
        } else {
            Some(
                SignedDeviceIdentity::from_bytes(&signed.signer_adv)
                    .map_err(GroupStateError::Adv)?,
            )
        };
        if state.signer_device.is_primary() != signer_adv.is_none() {
            return Err(bad("signer identity"));
        }
        let signature =
            <[u8; 64]>::try_from(signed.signature.as_slice()).map_err(|_| bad("signature"))?;
        Ok(Self { state, state_bytes: signed.state, signature, signer_adv, bytes: bytes.to_vec() })
    }

    /// The state (unverified until [`verify`](Self::verify)).
    pub fn state(&self) -> &GroupState {
        &self.state
    }

    /// The serialized form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// SHA-256 of the serialized form: what the next version names as `previous`.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(&self.bytes).into()
    }

    /// Checks the signature under the signing account's key `account_key`: the primary's
    /// signature directly; a companion's through its ADV identity, which must be for the
    /// signing account.
    pub fn verify(
        &self,
        account_key: &IdentityKey,
    ) -> Result<VerifiedGroupState<'_>, GroupStateError> {
        let (signer_key, signer_key_index) = match &self.signer_adv {
            None => (*account_key, None),
            Some(adv) => {
                let details = adv.verify(account_key).map_err(GroupStateError::Adv)?;
                if details.account_id != self.state.signer {
                    return Err(GroupStateError::Adv(AdvError::WrongAccount));
                }
                (details.identity_key, Some(details.key_index))
            }
        };
        signer_key
            .public_key()
            .verify_signature_parts(&[GROUP_STATE_PREFIX, &self.state_bytes], &self.signature)
            .map_err(|_| GroupStateError::BadSignature)?;
        Ok(VerifiedGroupState { state: &self.state, signer_key, signer_key_index })
    }

    /// Checks that this is a valid first version: version 1, no predecessor, the signer an
    /// admin member. (The signature is checked by [`verify`](Self::verify).)
    pub fn check_genesis(&self) -> Result<(), GroupStateError> {
        let s = &self.state;
        if s.version != 1 {
            return Err(GroupStateError::NotNext { current: 0, found: s.version });
        }
        if !s.is_admin(&s.signer) {
            return Err(GroupStateError::NotAllowed);
        }
        Ok(())
    }

    /// When the signer made this change, as a timestamp.
    pub fn signed_at(&self) -> Timestamp {
        Timestamp::from_millis(self.state.timestamp)
    }
}

/// What changed from one state to the next, for the line each member's chat shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupChange {
    /// Accounts that joined.
    pub added: Vec<AccountId>,
    /// Accounts that are gone (removed, or left when the signer is the one gone).
    pub removed: Vec<AccountId>,
    /// Accounts made admins.
    pub promoted: Vec<AccountId>,
    /// Accounts that are admins no more.
    pub demoted: Vec<AccountId>,
    /// The new title, if it changed.
    pub title: Option<String>,
}

impl GroupChange {
    /// The difference from `before` (`None` for a new group) to `after`.
    pub fn between(before: Option<&GroupState>, after: &GroupState) -> Self {
        let mut c = GroupChange::default();
        let empty = Vec::new();
        let old = before.map_or(&empty, |b| &b.members);
        for m in &after.members {
            match old.iter().find(|o| o.account_id == m.account_id) {
                None => c.added.push(m.account_id),
                Some(o) if o.admin && !m.admin => c.demoted.push(m.account_id),
                Some(o) if !o.admin && m.admin => c.promoted.push(m.account_id),
                Some(_) => {}
            }
        }
        c.removed =
            old.iter().filter(|o| !after.is_member(&o.account_id)).map(|o| o.account_id).collect();
        if before.is_none_or(|b| b.title != after.title) {
            c.title = Some(after.title.clone());
        }
        c
    }
}

#[cfg(test)]
mod tests;
