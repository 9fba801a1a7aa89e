//! Pairwise sessions: PQXDH setup and the Double Ratchet, wire-compatible with libsignal 0.90.
//!
//! The three operations read from a [`ProtocolStore`] and return the [`Changes`] they made;
//! the caller saves them (see [`crate::store`]):
//!
//! - [`process_prekey_bundle`]: start a session from a verified bundle (initiator);
//! - [`message_encrypt`]: encrypt on the current session;
//! - [`message_decrypt`]: decrypt a `SignalMessage` or `PreKeySignalMessage`, creating the
//!   responder's session from the latter.
//!
//! Trust is trust-on-first-use at this layer: the first identity seen for an address is
//! saved; a different one later is [`ProtocolError::UntrustedIdentity`] until the caller
//! accepts it (Tandem's device lists, signed by the account key, make that decision).

mod cipher;
mod pqxdh;

use rand_core::CryptoRng;

pub use crate::ratchet::session_record::{
    ARCHIVED_STATES_MAX_LENGTH, DETACHED_KYBER_FIELD, DetachedKyber, SessionRecord,
};
pub use crate::ratchet::state::{
    MAX_FORWARD_JUMPS, MAX_MESSAGE_KEYS, MAX_RECEIVER_CHAINS, MAX_UNACKNOWLEDGED_SESSION_AGE,
    SessionState,
};

use crate::address::ProtocolAddress;
use crate::crypto::KeyPair;
use crate::error::ProtocolError;
use crate::identity::IdentityKey;
use crate::prekeys::PreKeyBundle;
use crate::store::{
    Chain, ChainPosition, Changes, Encrypted, Guard, KyberPreKeyUse, ProtocolStore,
};
use crate::time::Timestamp;
use crate::wire::{CiphertextMessage, PreKeySignalMessage, SignalMessage};

/// Checks `identity` against the one trusted for `address`; records it on first use.
async fn check_trust<S: ProtocolStore + ?Sized>(
    store: &S,
    address: &ProtocolAddress,
    identity: &IdentityKey,
    changes: &mut Changes,
) -> Result<(), ProtocolError> {
    match store.load_identity(address).await? {
        Some(trusted) if trusted == *identity => Ok(()),
        Some(_) => Err(ProtocolError::UntrustedIdentity(address.clone())),
        None => {
            changes.identities.insert(address.clone(), *identity);
            Ok(())
        }
    }
}

/// Trusts `identity` for `remote` from now on, replacing the identity trusted before: the one
/// way past [`ProtocolError::UntrustedIdentity`]. Call it only when something other than the
/// peer's own word vouches for the new key (in Tandem, the account-signed device list; in
/// other apps, the user comparing safety numbers). Save the returned changes.
pub fn accept_identity(remote: &ProtocolAddress, identity: IdentityKey) -> Changes {
    let mut changes = Changes::default();
    changes.identities.insert(remote.clone(), identity);
    changes
}

/// Starts a session with `remote` from its bundle (both signatures are verified first).
/// The new state becomes current; an older one is archived. Until `remote` answers, every
/// message on it is a PreKey message.
pub async fn process_prekey_bundle<S: ProtocolStore + ?Sized>(
    store: &S,
    remote: &ProtocolAddress,
    bundle: &PreKeyBundle,
    now: Timestamp,
    rng: &mut impl CryptoRng,
) -> Result<Changes, ProtocolError> {
    bundle.verify()?;
    let mut changes = Changes::default();
    check_trust(store, remote, &bundle.identity_key, &mut changes).await?;
    let our_identity = store.load_identity_key_pair().await?;
    let our_registration_id = store.load_local_registration_id().await?;
    let base_key = KeyPair::generate(rng);
    let responder = pqxdh::Responder {
        identity: &bundle.identity_key,
        signed_pre_key: &bundle.signed_pre_key,
        one_time_pre_key: bundle.pre_key.as_ref().map(|(_, k)| k),
        kyber_pre_key: &bundle.kyber_pre_key,
        registration_id: bundle.registration_id,
    };
    let (mut state, kyber_ciphertext) =
        pqxdh::initialize_alice(&our_identity, &base_key, our_registration_id, &responder, rng)?;
    state.pending_pre_key = Some(crate::ratchet::state::PendingPreKey {
        pre_key_id: bundle.pre_key.as_ref().map(|(id, _)| *id),
        signed_pre_key_id: bundle.signed_pre_key_id,
        kyber_pre_key_id: bundle.kyber_pre_key_id,
        kyber_ciphertext,
        base_key: base_key.public_key,
        timestamp: now,
    });
    let mut record = store.load_session(remote).await?.unwrap_or_default();
    record.promote_state(state);
    changes.sessions.insert(remote.clone(), record);
    Ok(changes)
}

/// Encrypts `plaintext` for `remote` on the current session. The message comes out of the
/// returned [`Encrypted`] only once its ratchet step is saved, so a forgotten save cannot
/// make the next encryption repeat its message key.
pub async fn message_encrypt<S: ProtocolStore + ?Sized>(
    store: &S,
    remote: &ProtocolAddress,
    plaintext: &[u8],
    now: Timestamp,
) -> Result<Encrypted<CiphertextMessage>, ProtocolError> {
    let mut record = store.load_session(remote).await?.ok_or(ProtocolError::NoSession)?;
    let read_at = ChainPosition::of_session(&record);
    let state = record.current.as_mut().ok_or(ProtocolError::NoSession)?;
    let mut changes = Changes::default();
    let remote_identity = state.remote_identity;
    check_trust(store, remote, &remote_identity, &mut changes).await?;
    let message = cipher::encrypt_state(state, plaintext, now)?;
    // encrypt_state refuses a state without a sending chain, so the position was known.
    let read_at = read_at.ok_or(ProtocolError::NoSession)?;
    changes.guards.insert(Chain::Session(remote.clone()), Guard::At(read_at));
    changes.sessions.insert(remote.clone(), record);
    Ok(Encrypted::new(message, changes))
}

/// Decrypts a pairwise message from `remote`. A PreKey message for an unknown base key
/// creates the responder's session, consuming the named one-time prekey.
pub async fn message_decrypt<S: ProtocolStore + ?Sized>(
    store: &S,
    remote: &ProtocolAddress,
    message: &CiphertextMessage,
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, Changes), ProtocolError> {
    match message {
        CiphertextMessage::Signal(m) => decrypt_signal(store, remote, m, rng).await,
        CiphertextMessage::PreKey(m) => decrypt_prekey(store, remote, m, rng).await,
    }
}

async fn decrypt_signal<S: ProtocolStore + ?Sized>(
    store: &S,
    remote: &ProtocolAddress,
    message: &SignalMessage,
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, Changes), ProtocolError> {
    let mut record = store.load_session(remote).await?.ok_or(ProtocolError::NoSession)?;
    let plaintext = cipher::decrypt_with_record(&mut record, message, rng)?;
    let mut changes = Changes::default();
    let identity =
        record.current.as_ref().map(|s| s.remote_identity).ok_or(ProtocolError::NoSession)?;
    check_trust(store, remote, &identity, &mut changes).await?;
    changes.sessions.insert(remote.clone(), record);
    Ok((plaintext, changes))
}

async fn decrypt_prekey<S: ProtocolStore + ?Sized>(
    store: &S,
    remote: &ProtocolAddress,
    message: &PreKeySignalMessage,
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, Changes), ProtocolError> {
    let mut changes = Changes::default();
    check_trust(store, remote, message.identity_key(), &mut changes).await?;
    let mut record = store.load_session(remote).await?.unwrap_or_default();
    if !record.has_state_for_base_key(message.message_version(), message.base_key()) {
        let base_key = message.base_key();
        if !base_key.is_canonical() {
            return Err(ProtocolError::InvalidBaseKey);
        }
        let signed = store
            .load_signed_pre_key(message.signed_pre_key_id())
            .await?
            .ok_or(ProtocolError::MissingSignedPreKey(message.signed_pre_key_id()))?;
        let kyber = store
            .load_kyber_pre_key(message.kyber_pre_key_id())
            .await?
            .ok_or(ProtocolError::MissingKyberPreKey(message.kyber_pre_key_id()))?;
        if kyber.last_resort && message.pre_key_id().is_none() {
            // Here nothing is consumed, so the base key alone tells a replay: a small-order
            // component added to it would change its bytes but no agreement, and pass as new.
            // Where a one-time prekey (or a one-time Kyber key) is used, that key is deleted
            // with the first decryption and refuses any replay, so this costly check (a
            // scalar multiplication) is spent only here.
            if !base_key.is_canonical_and_torsion_free() {
                return Err(ProtocolError::InvalidBaseKey);
            }
        }
        if kyber.last_resort && store.kyber_pre_key_used_with(kyber.id, signed.id, base_key).await?
        {
            return Err(ProtocolError::ReplayedPreKeyMessage);
        }
        let one_time = match message.pre_key_id() {
            Some(id) => {
                Some(store.load_pre_key(id).await?.ok_or(ProtocolError::MissingPreKey(id))?)
            }
            None => None,
        };
        let our_identity = store.load_identity_key_pair().await?;
        let our_registration_id = store.load_local_registration_id().await?;
        let ours = pqxdh::OurPreKeys {
            signed_pre_key: &signed.key_pair,
            one_time_pre_key: one_time.as_ref().map(|k| &k.key_pair),
            kyber_secret: &kyber.key_pair.secret_key,
        };
        let state = pqxdh::initialize_bob(
            &our_identity,
            our_registration_id,
            &ours,
            message.identity_key(),
            base_key,
            message.registration_id(),
            message.kyber_ciphertext(),
        )?;
        record.promote_state(state);
        if let Some(k) = one_time {
            changes.removed_pre_keys.push(k.id);
        }
        changes.used_kyber_pre_keys.push(KyberPreKeyUse {
            kyber_pre_key_id: kyber.id,
            signed_pre_key_id: signed.id,
            base_key: *base_key,
        });
    }
    let plaintext = cipher::decrypt_with_record(&mut record, message.message(), rng)?;
    changes.sessions.insert(remote.clone(), record);
    Ok((plaintext, changes))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vector_tests;
