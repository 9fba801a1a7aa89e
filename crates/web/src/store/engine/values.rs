//! How records become IndexedDB keys and values, and the store's errors.

use super::*;

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

/// The stored object of a message: its bytes and the conversation index key.
pub(super) fn message_value(m: &MessageRecord) -> Result<JsValue, StoreError> {
    let o = Object::new();
    let ck = conversation_key(&m.conversation, &m.id.sort_key());
    Reflect::set(&o, &"c".into(), &ck).map_err(|_| backend("cannot build a message object"))?;
    Reflect::set(&o, &"v".into(), &bytes_value(&m.to_bytes()))
        .map_err(|_| backend("cannot build a message object"))?;
    Ok(o.into())
}

pub(super) fn message_from_value(v: &JsValue) -> Result<MessageRecord, StoreError> {
    let bytes = Reflect::get(v, &"v".into()).map_err(|_| corrupt("message", "no value"))?;
    MessageRecord::from_bytes(&value_bytes("message", &bytes)?).map_err(|e| corrupt("message", e))
}
