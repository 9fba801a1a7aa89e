//! Encryptions that release their message only once their ratchet step is saved.
//!
//! An encryption advances a sending chain (a session's, or a sender key's). If the advance
//! were not saved, the next encryption would read the old chain and use the same message
//! key, counter and IV again. So an encryption returns an [`Encrypted`]: its message comes
//! out only through [`Encrypted::save`] or an [`EncryptedBatch`], after the store committed
//! the step. And each step carries a [`Guard`]: where the chain stood when the encryption
//! read it. A store saves a batch only if every guarded chain still stands there, so two
//! encryptions that read the same chain cannot both be saved, however they are combined.

use std::collections::HashMap;
use std::future::Future;

use super::{Changes, ProtocolStore, SenderKeyName, StoreError};
use crate::address::ProtocolAddress;
use crate::ratchet::sender_key::SenderKeyRecord;
use crate::ratchet::session_record::SessionRecord;

/// A sending chain an encryption advanced.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Chain {
    /// The sending chain of the session with this address.
    Session(ProtocolAddress),
    /// This device's sender key for a group distribution.
    SenderKey(SenderKeyName),
}

impl std::fmt::Display for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chain::Session(a) => write!(f, "the session with {a}"),
            Chain::SenderKey(n) => {
                write!(f, "the sender key of {} for {}", n.sender, n.distribution_id)
            }
        }
    }
}

/// Where a sending chain stands: which chain it is, and the index of its next message key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainPosition {
    chain: [u8; 32],
    index: u32,
}

impl ChainPosition {
    /// Where `record`'s current state sends next (`None`: it cannot send).
    pub fn of_session(record: &SessionRecord) -> Option<Self> {
        let chain = record.current()?.sender_chain.as_ref()?;
        Some(Self { chain: *chain.ratchet_key.public_key.u_bytes(), index: chain.chain_key.index })
    }

    /// Whether this is on the same chain as `other` and before it: a message sent from here
    /// uses a key a record standing at `other` has already passed (so reloading that
    /// record can never use it again).
    pub fn precedes(&self, other: &Self) -> bool {
        self.chain == other.chain && self.index < other.index
    }

    /// Where `record`'s current sender key sends next (`None`: it has none).
    pub fn of_sender_key(record: &SenderKeyRecord) -> Option<Self> {
        let state = record.current()?;
        let mut chain = [0; 32];
        chain[..4].copy_from_slice(&state.chain_id().to_be_bytes());
        Some(Self { chain, index: state.iteration() })
    }
}

/// What a save requires of a chain an encryption in the batch advanced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// The stored chain still stands here (where the encryption read it).
    At(ChainPosition),
    /// Two operations on this chain were combined without a save between them: the later
    /// one read a chain the earlier had already moved. Such a batch is never saved.
    Conflict,
}

impl Changes {
    /// Checks the batch's guards against what the store holds now; `current` tells where a
    /// stored chain stands (`None`: no such chain, or it cannot send). A store calls this
    /// inside its write exclusion, before writing anything, and refuses the whole batch on
    /// an error.
    pub fn check_guards(
        &self,
        mut current: impl FnMut(&Chain) -> Option<ChainPosition>,
    ) -> Result<(), StoreError> {
        for (chain, guard) in &self.guards {
            match guard {
                Guard::At(at) if current(chain) == Some(*at) => {}
                _ => return Err(StoreError::ChainMoved(chain.to_string())),
            }
        }
        Ok(())
    }

    /// [`Changes::check_guards`] for a store read through its traits.
    pub async fn check_guards_in<S: ProtocolStore + ?Sized>(
        &self,
        store: &S,
    ) -> Result<(), StoreError> {
        let mut positions = HashMap::with_capacity(self.guards.len());
        for chain in self.guards.keys() {
            let at = match chain {
                Chain::Session(a) => {
                    store.load_session(a).await?.as_ref().and_then(ChainPosition::of_session)
                }
                Chain::SenderKey(n) => {
                    store.load_sender_key(n).await?.as_ref().and_then(ChainPosition::of_sender_key)
                }
            };
            positions.insert(chain.clone(), at);
        }
        self.check_guards(|chain| positions.get(chain).copied().flatten())
    }

    /// Marks chains that `later` changes after this batch changed them (or the other way
    /// round) where an encryption is involved: the later operation read the stored chain,
    /// not this batch's, so saving both would use a message key twice.
    pub(super) fn guard_merge(&mut self, later: &Changes) {
        let touched_here = |c: &Chain, this: &Changes| match c {
            Chain::Session(a) => this.sessions.contains_key(a) || this.removed_sessions.contains(a),
            Chain::SenderKey(n) => this.sender_keys.contains_key(n),
        };
        let mut conflicts: Vec<Chain> = later
            .guards
            .keys()
            .filter(|c| self.guards.contains_key(*c) || touched_here(c, self))
            .cloned()
            .collect();
        conflicts.extend(self.guards.keys().filter(|c| touched_here(c, later)).cloned());
        for (chain, guard) in &later.guards {
            self.guards.insert(chain.clone(), *guard);
        }
        for chain in conflicts {
            self.guards.insert(chain, Guard::Conflict);
        }
    }
}

/// An encryption whose ratchet step is not saved yet. Its message comes out only through
/// [`Encrypted::save`] or [`EncryptedBatch::save`], after the step is stored: an encryption
/// that is dropped leaves nothing that could be sent, so no message key is ever used twice.
#[must_use = "nothing can be sent until the encryption is saved: call `save`, or push it into an `EncryptedBatch`"]
#[derive(Debug)]
pub struct Encrypted<M> {
    message: M,
    changes: Changes,
}

impl<M> Encrypted<M> {
    pub(crate) fn new(message: M, changes: Changes) -> Self {
        Self { message, changes }
    }

    /// What the encryption changed (to look at; saving them yourself does not release the
    /// message).
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// Adds other changes to the same transaction (an account record, a message).
    pub fn add_changes(&mut self, changes: Changes) {
        self.changes.merge(changes);
    }

    /// Tests only (feature `testing`): the message and the changes apart, so a test can
    /// play what a careless caller would do with them.
    #[cfg(any(test, feature = "testing"))]
    pub fn into_parts(self) -> (M, Changes) {
        (self.message, self.changes)
    }

    /// Saves the ratchet step through `save` (which must store the changes it is given, with
    /// whatever belongs in the same transaction) and releases the message once it succeeded.
    pub async fn save_with<E, Fut>(self, save: impl FnOnce(Changes) -> Fut) -> Result<M, E>
    where
        Fut: Future<Output = Result<(), E>>,
    {
        save(self.changes).await?;
        Ok(self.message)
    }

    /// Saves the ratchet step and releases the message. Fails with
    /// [`StoreError::ChainMoved`] if another encryption on the same chain was saved since this
    /// one read it; then nothing was saved and the message is dropped: encrypt again.
    pub async fn save<S: ProtocolStore + ?Sized>(self, store: &S) -> Result<M, StoreError> {
        store.save_changes(self.changes).await?;
        Ok(self.message)
    }
}

/// Several encryptions (on different chains) and any other changes, saved in one
/// transaction; their messages come out, in the order they were pushed, once it committed.
#[must_use = "nothing can be sent until the batch is saved"]
#[derive(Debug)]
pub struct EncryptedBatch<M> {
    messages: Vec<M>,
    changes: Changes,
}

impl<M> Default for EncryptedBatch<M> {
    fn default() -> Self {
        Self { messages: Vec::new(), changes: Changes::default() }
    }
}

impl<M> EncryptedBatch<M> {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an encryption; its message will be at index [`EncryptedBatch::len`] before the
    /// push. Two encryptions of one chain in a batch make the whole batch fail to save.
    pub fn push(&mut self, encrypted: Encrypted<M>) {
        self.changes.merge(encrypted.changes);
        self.messages.push(encrypted.message);
    }

    /// Adds other changes to the same transaction (an account record, a message).
    pub fn add_changes(&mut self, changes: Changes) {
        self.changes.merge(changes);
    }

    /// How many encryptions the batch holds.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the batch holds no encryption.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Like [`EncryptedBatch::save`], through `save` (see [`Encrypted::save_with`]).
    pub async fn save_with<E, Fut>(self, save: impl FnOnce(Changes) -> Fut) -> Result<Vec<M>, E>
    where
        Fut: Future<Output = Result<(), E>>,
    {
        save(self.changes).await?;
        Ok(self.messages)
    }

    /// Saves everything in one transaction and releases the messages in push order.
    pub async fn save<S: ProtocolStore + ?Sized>(self, store: &S) -> Result<Vec<M>, StoreError> {
        store.save_changes(self.changes).await?;
        Ok(self.messages)
    }
}
