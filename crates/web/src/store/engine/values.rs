//! How records become IndexedDB keys and values, and the store's errors.

use super::*;
use crate::store::seal::{DataKey, SealError, aad};

pub(super) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::backend(e.to_string())
}

pub(super) fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { what, reason: reason.to_string() }
}

pub(super) fn rexie_err(e: rexie::Error) -> StoreError {
    backend(crate::store::StoreError::from(e))
}

pub(super) fn bytes_value(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

pub(super) fn value_bytes(what: &'static str, v: &JsValue) -> Result<Vec<u8>, StoreError> {
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if let Some(b) = v.dyn_ref::<js_sys::ArrayBuffer>() {
        return Ok(Uint8Array::new(b).to_vec());
    }
    Err(corrupt(what, "not bytes"))
}

pub(super) fn address_key(a: &ProtocolAddress) -> JsValue {
    JsValue::from_str(&a.to_string())
}

pub(super) fn sender_key_key(n: &SenderKeyName) -> JsValue {
    JsValue::from_str(&format!("{}/{}", n.sender, hex::encode(n.distribution_id.0)))
}

pub(super) fn kyber_use_key(
    kyber: KyberPreKeyId,
    signed: SignedPreKeyId,
    base_key: &PublicKey,
) -> JsValue {
    JsValue::from_str(&format!("{}/{}/{}", kyber.0, signed.0, hex::encode(base_key.serialize())))
}

pub(super) fn account_key(a: &AccountId) -> JsValue {
    JsValue::from_str(&a.to_string())
}

pub(super) fn message_key(id: &MessageId) -> JsValue {
    bytes_value(&id.sort_key())
}

pub(super) fn conversation_key(c: &Conversation, id_key: &[u8]) -> JsValue {
    let mut k = conversation_to_bytes(c);
    k.extend_from_slice(id_key);
    bytes_value(&k)
}

/// A sealing or opening failure as a store error: a value that does not authenticate is
/// corrupt, the rest is the backend's.
pub(super) fn seal_err(e: SealError) -> StoreError {
    match e {
        SealError::Tampered(what) => corrupt(what, "it failed its integrity check"),
        other => backend(other),
    }
}

/// The conversation index key of a message, from its stored object.
fn message_index_key(v: &JsValue) -> Result<JsValue, StoreError> {
    Reflect::get(v, &"c".into())
        .ok()
        .filter(|c| c.is_instance_of::<Uint8Array>() || c.is_instance_of::<js_sys::ArrayBuffer>())
        .ok_or_else(|| corrupt("message", "no conversation key"))
}

/// Values to seal before a write transaction opens (an IndexedDB transaction commits as soon
/// as nothing is pending, so WebCrypto cannot run inside one).
#[derive(Default)]
pub(super) struct Sealing {
    /// Store, record key, and for a message its conversation index key.
    targets: Vec<(&'static str, JsValue, Option<JsValue>)>,
    /// Additional data and plaintext, in the same order.
    plain: Vec<(Vec<u8>, zeroize::Zeroizing<Vec<u8>>)>,
}

impl Sealing {
    /// Seals `plain` as the value of `key` in `store`.
    pub(super) fn put(&mut self, store: &'static str, key: JsValue, plain: Vec<u8>) {
        self.plain.push((aad(store, &key), zeroize::Zeroizing::new(plain)));
        self.targets.push((store, key, None));
    }

    /// Seals a message as a `{c, v}` object: `c` the conversation index key (clear, for
    /// lookups), `v` the sealed record, bound to `c`.
    pub(super) fn put_message(&mut self, m: &MessageRecord) {
        let c = conversation_key(&m.conversation, &m.id.sort_key());
        self.plain.push((aad(MESSAGES, &c), zeroize::Zeroizing::new(m.to_bytes())));
        self.targets.push((MESSAGES, message_key(&m.id), Some(c)));
    }

    /// Seals everything at once.
    pub(super) async fn seal(self, key: &DataKey) -> Result<Sealed, StoreError> {
        let sealed = key.seal_all(&self.plain).await.map_err(seal_err)?;
        let mut out: HashMap<&'static str, Vec<(JsValue, JsValue)>> = HashMap::new();
        for ((store, k, c), v) in self.targets.into_iter().zip(sealed) {
            let value: JsValue = match c {
                Some(c) => {
                    let o = Object::new();
                    Reflect::set(&o, &"c".into(), &c)
                        .and_then(|_| Reflect::set(&o, &"v".into(), &v))
                        .map_err(|_| backend("cannot build a message object"))?;
                    o.into()
                }
                None => v.into(),
            };
            out.entry(store).or_default().push((k, value));
        }
        Ok(Sealed(out))
    }
}

/// Sealed values by store, ready for a transaction.
pub(super) struct Sealed(HashMap<&'static str, Vec<(JsValue, JsValue)>>);

impl Sealed {
    /// The values for `store`.
    pub(super) fn take(&mut self, store: &str) -> Vec<(JsValue, JsValue)> {
        self.0.remove(store).unwrap_or_default()
    }
}

/// Opens `(record key, sealed value)` rows of `store`.
pub(super) async fn open_rows(
    key: &DataKey,
    what: &'static str,
    store: &str,
    rows: &[(JsValue, JsValue)],
) -> Result<Vec<zeroize::Zeroizing<Vec<u8>>>, StoreError> {
    let items: Vec<_> = rows.iter().map(|(k, v)| (aad(store, k), v.clone())).collect();
    key.open_all(what, &items).await.map_err(seal_err)
}

/// Opens stored message objects; each must be the message its index key names.
pub(super) async fn open_messages(
    key: &DataKey,
    values: &[JsValue],
) -> Result<Vec<MessageRecord>, StoreError> {
    let mut items = Vec::with_capacity(values.len());
    for v in values {
        let c = message_index_key(v)?;
        let sealed = Reflect::get(v, &"v".into()).map_err(|_| corrupt("message", "no value"))?;
        items.push((aad(MESSAGES, &c), sealed));
    }
    let opened = key.open_all("message", &items).await.map_err(seal_err)?;
    opened
        .iter()
        .zip(values)
        .map(|(bytes, v)| {
            let m = MessageRecord::from_bytes(bytes).map_err(|e| corrupt("message", e))?;
            // The record must be the one its index key names.
            let c = value_bytes("message", &message_index_key(v)?)?;
            if c != value_bytes("message", &conversation_key(&m.conversation, &m.id.sort_key()))? {
                return Err(corrupt("message", "it is filed under another message"));
            }
            Ok(m)
        })
        .collect()
}
