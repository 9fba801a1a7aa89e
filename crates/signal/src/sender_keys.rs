//! Sender Keys (Signal's group messaging): each sending device has one chain per group
//! distribution, hands its chain key and signing key to members over pairwise sessions
//! (a `SenderKeyDistributionMessage`), then encrypts each group message once.
//!
//! Like sessions, the operations return [`Changes`] for the caller to save.

use rand_core::CryptoRng;

pub use crate::ratchet::sender_key::{MAX_SENDER_KEY_STATES, SenderKeyRecord, SenderKeyState};
pub use crate::ratchet::{DistributionId, InvalidDistributionId};

use crate::address::ProtocolAddress;
use crate::crypto::{KeyPair, aes256_cbc_decrypt, aes256_cbc_encrypt};
use crate::error::ProtocolError;
use crate::store::{Chain, ChainPosition, Changes, Encrypted, Guard, ProtocolStore, SenderKeyName};
use crate::wire::{SenderKeyDistributionMessage, SenderKeyMessage};

impl DistributionId {
    /// A random (version 4) UUID.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Self(b)
    }
}

fn name(sender: &ProtocolAddress, distribution_id: DistributionId) -> SenderKeyName {
    SenderKeyName { sender: sender.clone(), distribution_id }
}

fn fresh_state(rng: &mut impl CryptoRng) -> SenderKeyState {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    // libsignal's chain ids are random 31-bit values.
    let chain_id = rng.next_u32() >> 1;
    let state = SenderKeyState::new(chain_id, 0, seed, KeyPair::generate(rng));
    zeroize::Zeroize::zeroize(&mut seed);
    state
}

/// The distribution message for our own chain in `distribution_id`, creating the chain on
/// first use. Send it to every member device over pairwise sessions.
pub async fn create_sender_key_distribution_message<S: ProtocolStore + ?Sized>(
    store: &S,
    own_address: &ProtocolAddress,
    distribution_id: DistributionId,
    rng: &mut impl CryptoRng,
) -> Result<(SenderKeyDistributionMessage, Changes), ProtocolError> {
    let key = name(own_address, distribution_id);
    let mut changes = Changes::default();
    let record = match store.load_sender_key(&key).await? {
        Some(r) if r.current().is_some_and(SenderKeyState::can_send) => r,
        _ => {
            let r = SenderKeyRecord::from_state(fresh_state(rng));
            changes.sender_keys.insert(key, r.clone());
            r
        }
    };
    let state = record.current().ok_or(ProtocolError::NoSenderKeyState)?;
    Ok((state.distribution_message(distribution_id), changes))
}

/// Replaces our chain in `distribution_id` by a fresh one (after a member or device left):
/// holders of the old chain cannot read what we send next. Redistribute afterwards.
pub fn rotate_sender_key(
    own_address: &ProtocolAddress,
    distribution_id: DistributionId,
    rng: &mut impl CryptoRng,
) -> Changes {
    let mut changes = Changes::default();
    changes
        .sender_keys
        .insert(name(own_address, distribution_id), SenderKeyRecord::from_state(fresh_state(rng)));
    changes
}

/// Stores a member's chain from their distribution message.
pub async fn process_sender_key_distribution_message<S: ProtocolStore + ?Sized>(
    store: &S,
    sender: &ProtocolAddress,
    message: &SenderKeyDistributionMessage,
) -> Result<Changes, ProtocolError> {
    let key = name(sender, DistributionId(message.distribution_id()));
    let mut record = store.load_sender_key(&key).await?.unwrap_or_default();
    record.add_state(SenderKeyState::from_distribution(message));
    let mut changes = Changes::default();
    changes.sender_keys.insert(key, record);
    Ok(changes)
}

/// Encrypts a group message once for all members, with our chain in `distribution_id`.
pub async fn group_encrypt<S: ProtocolStore + ?Sized>(
    store: &S,
    own_address: &ProtocolAddress,
    distribution_id: DistributionId,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Encrypted<SenderKeyMessage>, ProtocolError> {
    let key = name(own_address, distribution_id);
    let mut record = store.load_sender_key(&key).await?.ok_or(ProtocolError::NoSenderKeyState)?;
    let read_at = ChainPosition::of_sender_key(&record).ok_or(ProtocolError::NoSenderKeyState)?;
    let message = group_encrypt_in(&mut record, distribution_id, plaintext, rng)?;
    let mut changes = Changes::default();
    changes.guards.insert(Chain::SenderKey(key.clone()), Guard::At(read_at));
    changes.sender_keys.insert(key, record);
    Ok(Encrypted::new(message, changes))
}

/// [`group_encrypt`] on a record the caller holds, advanced in place, without a store: for a
/// sender that keeps its chain in memory between saves. Before the message leaves, a record
/// at or beyond the advanced position must be durable — see [`reserve_ahead`] — or a crash
/// would use a message key twice.
pub fn group_encrypt_in(
    record: &mut SenderKeyRecord,
    distribution_id: DistributionId,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<SenderKeyMessage, ProtocolError> {
    let state = record.current_mut().ok_or(ProtocolError::NoSenderKeyState)?;
    let signing_key = state.signing_private().ok_or(ProtocolError::NoSenderKeyState)?.clone();
    let keys = state.chain_key().message_keys()?;
    let body = aes256_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
    let message = SenderKeyMessage::new(
        distribution_id.0,
        state.chain_id(),
        keys.iteration,
        body,
        &signing_key,
        rng,
    );
    state.advance();
    Ok(message)
}

/// A copy of `record` whose current chain stands `steps` messages further on. Saved in place
/// of the record before sending, it lets the next `steps` encryptions with the record in
/// memory ([`group_encrypt_in`]) go without a save each: a crash loses at most those
/// iterations, which members skip, and never repeats one. Fails for a record that cannot send.
pub fn reserve_ahead(
    record: &SenderKeyRecord,
    steps: u32,
) -> Result<SenderKeyRecord, ProtocolError> {
    let mut ahead = record.clone();
    let state = ahead.current_mut().ok_or(ProtocolError::NoSenderKeyState)?;
    if !state.can_send() {
        return Err(ProtocolError::NoSenderKeyState);
    }
    for _ in 0..steps {
        state.advance();
    }
    Ok(ahead)
}

/// Decrypts a group message from `sender` (parsed, like [`crate::session::message_decrypt`]'s
/// input, with [`SenderKeyMessage::from_bytes`]): finds the chain, checks the signature,
/// takes or derives the message key (skipping ahead at most 25 000), and decrypts.
pub async fn group_decrypt<S: ProtocolStore + ?Sized>(
    store: &S,
    sender: &ProtocolAddress,
    message: &SenderKeyMessage,
) -> Result<(Vec<u8>, Changes), ProtocolError> {
    let key = name(sender, DistributionId(message.distribution_id()));
    let mut record = store.load_sender_key(&key).await?.ok_or(ProtocolError::NoSenderKeyState)?;
    let state =
        record.state_for_chain(message.chain_id()).ok_or(ProtocolError::NoSenderKeyState)?;
    message.verify_signature(state.signing_public())?;
    let keys = state.message_keys_for(message.iteration())?;
    let plaintext = aes256_cbc_decrypt(&keys.cipher_key, &keys.iv, message.body())
        .map_err(|_| ProtocolError::InvalidMessage("ciphertext does not decrypt"))?;
    let mut changes = Changes::default();
    changes.sender_keys.insert(key, record);
    Ok((plaintext, changes))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vector_tests;
