//! PQXDH session setup (Signal's PQXDH spec with libsignal's KDF, §2.4 of the vectors README).

use std::collections::VecDeque;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::crypto::{
    CryptoError, KeyPair, KyberCiphertext, KyberPublicKey, KyberSecretKey, PublicKey, hkdf_sha256,
};
use crate::identity::{IdentityKey, IdentityKeyPair};
use crate::ratchet::chain::{ChainKey, RootKey};
use crate::ratchet::state::{SenderChain, SessionState};
use crate::wire::CIPHERTEXT_MESSAGE_VERSION;

const PQXDH_INFO: &[u8] = b"WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024";
/// `0xFF × 32`: the X25519 "discontinuity bytes" prefix of the KDF input.
const DISCONTINUITY: [u8; 32] = [0xff; 32];

/// The derived secrets: root key, first chain key, and SPQR's authentication key (unused
/// until SPQR; kept so the 96-byte derivation is already the SPQR-era one).
struct DerivedKeys {
    root_key: RootKey,
    chain_key: ChainKey,
}

fn derive(secret: &[u8]) -> Result<DerivedKeys, CryptoError> {
    let mut okm = Zeroizing::new([0u8; 96]);
    hkdf_sha256(None, secret, PQXDH_INFO, okm.as_mut())?;
    let mut root = [0u8; 32];
    let mut chain = [0u8; 32];
    root.copy_from_slice(&okm[..32]);
    chain.copy_from_slice(&okm[32..64]);
    Ok(DerivedKeys { root_key: RootKey(root), chain_key: ChainKey { key: chain, index: 0 } })
}

/// What the initiator knows about the responder (from a verified bundle).
pub(crate) struct Responder<'a> {
    pub(crate) identity: &'a IdentityKey,
    pub(crate) signed_pre_key: &'a PublicKey,
    pub(crate) one_time_pre_key: Option<&'a PublicKey>,
    pub(crate) kyber_pre_key: &'a KyberPublicKey,
    pub(crate) registration_id: u32,
}

/// Initiator ("Alice") side: returns the state and the Kyber ciphertext to send.
pub(crate) fn initialize_alice(
    our_identity: &IdentityKeyPair,
    our_base_key: &KeyPair,
    our_registration_id: u32,
    them: &Responder<'_>,
    rng: &mut impl CryptoRng,
) -> Result<(SessionState, KyberCiphertext), CryptoError> {
    let (kyber_ciphertext, kyber_secret) = them.kyber_pre_key.encapsulate(rng);
    let mut secret = Zeroizing::new(Vec::with_capacity(32 * 6));
    secret.extend_from_slice(&DISCONTINUITY);
    secret.extend_from_slice(our_identity.private_key().agree(them.signed_pre_key)?.as_bytes());
    secret
        .extend_from_slice(our_base_key.private_key.agree(them.identity.public_key())?.as_bytes());
    secret.extend_from_slice(our_base_key.private_key.agree(them.signed_pre_key)?.as_bytes());
    if let Some(otk) = them.one_time_pre_key {
        secret.extend_from_slice(our_base_key.private_key.agree(otk)?.as_bytes());
    }
    secret.extend_from_slice(kyber_secret.as_bytes());
    let keys = derive(&secret)?;

    let sending_ratchet = KeyPair::generate(rng);
    let (root_key, sending_chain) =
        keys.root_key.create_chain(them.signed_pre_key, &sending_ratchet.private_key)?;
    let mut state = SessionState {
        version: CIPHERTEXT_MESSAGE_VERSION,
        local_identity: *our_identity.identity_key(),
        remote_identity: *them.identity,
        root_key,
        previous_counter: 0,
        sender_chain: Some(SenderChain { ratchet_key: sending_ratchet, chain_key: sending_chain }),
        receiver_chains: VecDeque::new(),
        pending_pre_key: None,
        local_registration_id: our_registration_id,
        remote_registration_id: them.registration_id,
        alice_base_key: our_base_key.public_key,
    };
    state.add_receiver_chain(*them.signed_pre_key, keys.chain_key.clone());
    Ok((state, kyber_ciphertext))
}

/// What the responder ("Bob") uses from its own keys.
pub(crate) struct OurPreKeys<'a> {
    pub(crate) signed_pre_key: &'a KeyPair,
    pub(crate) one_time_pre_key: Option<&'a KeyPair>,
    pub(crate) kyber_secret: &'a KyberSecretKey,
}

/// Responder side, from a PreKey message's parameters.
pub(crate) fn initialize_bob(
    our_identity: &IdentityKeyPair,
    our_registration_id: u32,
    ours: &OurPreKeys<'_>,
    their_identity: &IdentityKey,
    their_base_key: &PublicKey,
    their_registration_id: u32,
    kyber_ciphertext: &KyberCiphertext,
) -> Result<SessionState, CryptoError> {
    let kyber_secret = ours.kyber_secret.decapsulate(kyber_ciphertext);
    let mut secret = Zeroizing::new(Vec::with_capacity(32 * 6));
    secret.extend_from_slice(&DISCONTINUITY);
    secret.extend_from_slice(
        ours.signed_pre_key.private_key.agree(their_identity.public_key())?.as_bytes(),
    );
    secret.extend_from_slice(our_identity.private_key().agree(their_base_key)?.as_bytes());
    secret.extend_from_slice(ours.signed_pre_key.private_key.agree(their_base_key)?.as_bytes());
    if let Some(otk) = ours.one_time_pre_key {
        secret.extend_from_slice(otk.private_key.agree(their_base_key)?.as_bytes());
    }
    secret.extend_from_slice(kyber_secret.as_bytes());
    let keys = derive(&secret)?;
    Ok(SessionState {
        version: CIPHERTEXT_MESSAGE_VERSION,
        local_identity: *our_identity.identity_key(),
        remote_identity: *their_identity,
        root_key: keys.root_key,
        previous_counter: 0,
        sender_chain: Some(SenderChain {
            ratchet_key: ours.signed_pre_key.clone(),
            chain_key: keys.chain_key,
        }),
        receiver_chains: VecDeque::new(),
        pending_pre_key: None,
        local_registration_id: our_registration_id,
        remote_registration_id: their_registration_id,
        alice_base_key: *their_base_key,
    })
}
