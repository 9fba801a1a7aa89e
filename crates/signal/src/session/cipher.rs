//! Encrypting and decrypting on session states. Everything here works on copies: a state
//! changes only when an operation on it fully succeeds (MAC and padding checked).

use rand_core::CryptoRng;

use crate::crypto::{KeyPair, PublicKey, aes256_cbc_decrypt, aes256_cbc_encrypt};
use crate::error::ProtocolError;
use crate::ratchet::chain::{ChainKey, MessageKeys};
use crate::ratchet::session_record::SessionRecord;
use crate::ratchet::state::{MAX_FORWARD_JUMPS, SenderChain, SessionState};
use crate::time::Timestamp;
use crate::wire::{CiphertextMessage, PreKeySignalMessage, SignalMessage};

/// Encrypts `plaintext` on `state`, advancing its sending chain. While the session is
/// unacknowledged the result is a PreKey message repeating the PQXDH parameters.
pub(crate) fn encrypt_state(
    state: &mut SessionState,
    plaintext: &[u8],
    now: Timestamp,
) -> Result<CiphertextMessage, ProtocolError> {
    encrypt_state_with(state, plaintext, now, None)
}

/// [`encrypt_state`] with an optional `pq_ratchet` field, which only tests set (to reproduce
/// libsignal's bytes).
pub(crate) fn encrypt_state_with(
    state: &mut SessionState,
    plaintext: &[u8],
    now: Timestamp,
    pq_ratchet: Option<Vec<u8>>,
) -> Result<CiphertextMessage, ProtocolError> {
    if !state.has_usable_sender_chain(now) {
        return Err(if state.sender_chain.is_some() {
            ProtocolError::StaleSession
        } else {
            ProtocolError::NoSession
        });
    }
    let chain = state.sender_chain.as_mut().ok_or(ProtocolError::NoSession)?;
    let keys = chain.chain_key.message_keys()?;
    let body = aes256_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
    let message = SignalMessage::build(
        state.version,
        &keys.mac_key,
        chain.ratchet_key.public_key,
        (chain.chain_key.index, state.previous_counter),
        body,
        pq_ratchet,
        &state.local_identity,
        &state.remote_identity,
    );
    chain.chain_key = chain.chain_key.next();
    Ok(match &state.pending_pre_key {
        None => CiphertextMessage::Signal(message),
        Some(p) => CiphertextMessage::PreKey(PreKeySignalMessage::new(
            state.version,
            state.local_registration_id,
            p.pre_key_id,
            p.signed_pre_key_id,
            p.kyber_pre_key_id,
            p.kyber_ciphertext.clone(),
            p.base_key,
            state.local_identity,
            message,
        )),
    })
}

/// Tries the current state, then every archived one; the first that decrypts is kept and
/// made current. With no success the record is unchanged and the most telling error is
/// returned: a duplicate if any state recognised the message, else the current state's.
pub(crate) fn decrypt_with_record(
    record: &mut SessionRecord,
    message: &SignalMessage,
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, ProtocolError> {
    let mut first_error = None;
    let mut duplicate = None;
    let mut note = |e: ProtocolError| {
        if matches!(e, ProtocolError::DuplicatedMessage { .. }) && duplicate.is_none() {
            duplicate = Some(e);
        } else if first_error.is_none() {
            first_error = Some(e);
        }
    };
    if let Some(current) = &record.current {
        let mut trial = current.clone();
        match decrypt_with_state(&mut trial, message, rng) {
            Ok(plaintext) => {
                record.current = Some(trial);
                return Ok(plaintext);
            }
            Err(e) => note(e),
        }
    }
    for index in 0..record.previous.len() {
        let mut trial = record.previous[index].clone();
        match decrypt_with_state(&mut trial, message, rng) {
            Ok(plaintext) => {
                record.promote_archived(index, trial);
                return Ok(plaintext);
            }
            Err(e) => note(e),
        }
    }
    Err(duplicate.or(first_error).unwrap_or(ProtocolError::NoSession))
}

fn decrypt_with_state(
    state: &mut SessionState,
    message: &SignalMessage,
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, ProtocolError> {
    if message.message_version() != state.version {
        return Err(ProtocolError::UnsupportedVersion(message.message_version()));
    }
    let their_ratchet_key = message.ratchet_key();
    let chain_key = receiver_chain_key(state, their_ratchet_key, rng)?;
    let keys = message_keys(state, their_ratchet_key, &chain_key, message.counter())?;
    if !message.verify_mac(&state.remote_identity, &state.local_identity, &keys.mac_key) {
        return Err(ProtocolError::BadMac);
    }
    let plaintext = aes256_cbc_decrypt(&keys.cipher_key, &keys.iv, message.body())
        .map_err(|_| ProtocolError::InvalidMessage("ciphertext does not decrypt"))?;
    state.clear_pending_pre_key();
    Ok(plaintext)
}

/// The receiving chain for `their_ratchet_key`, performing a DH ratchet step if it is new.
fn receiver_chain_key(
    state: &mut SessionState,
    their_ratchet_key: &PublicKey,
    rng: &mut impl CryptoRng,
) -> Result<ChainKey, ProtocolError> {
    if let Some(i) = state.receiver_chain_index(their_ratchet_key) {
        return Ok(state.receiver_chains[i].chain_key.clone());
    }
    let sender = state.sender_chain.as_ref().ok_or(ProtocolError::NoSession)?;
    let (root, receiving) =
        state.root_key.create_chain(their_ratchet_key, &sender.ratchet_key.private_key)?;
    let our_new = KeyPair::generate(rng);
    let (root, sending) = root.create_chain(their_ratchet_key, &our_new.private_key)?;
    let previous_index = sender.chain_key.index;
    state.root_key = root;
    state.add_receiver_chain(*their_ratchet_key, receiving.clone());
    state.previous_counter = previous_index.saturating_sub(1);
    state.sender_chain = Some(SenderChain { ratchet_key: our_new, chain_key: sending });
    Ok(receiving)
}

/// The message keys for `counter`: a stored skipped key, or the chain stepped forward (storing
/// the keys it skips).
fn message_keys(
    state: &mut SessionState,
    their_ratchet_key: &PublicKey,
    chain_key: &ChainKey,
    counter: u32,
) -> Result<MessageKeys, ProtocolError> {
    let index = state.receiver_chain_index(their_ratchet_key).ok_or(ProtocolError::NoSession)?;
    let chain = &mut state.receiver_chains[index];
    if chain_key.index > counter {
        return match chain.take_message_key(counter) {
            Some(mut seed) => {
                let keys = MessageKeys::derive(&seed, counter, None);
                zeroize::Zeroize::zeroize(&mut seed);
                Ok(keys?)
            }
            None => Err(ProtocolError::DuplicatedMessage { chain_index: chain_key.index, counter }),
        };
    }
    let jump = counter - chain_key.index;
    if jump > MAX_FORWARD_JUMPS {
        return Err(ProtocolError::TooFarIntoFuture { jump, limit: MAX_FORWARD_JUMPS });
    }
    let mut current = chain_key.clone();
    while current.index < counter {
        chain.store_message_key(current.index, current.message_key_seed());
        current = current.next();
    }
    chain.chain_key = current.next();
    Ok(current.message_keys()?)
}
