//! The session log: all the session records one [`Changes`](super::Changes) batch wrote, as
//! one record, for stores whose cost is per record rather than per byte (IndexedDB: a
//! 1 000-device fan-out writes one log entry instead of 1 000 session records). A store
//! replays its log over its per-address records, newest entry last, and folds the log back
//! into per-address records when it grows ("compaction").
//!
//! Encoding: protobuf `SessionLogEntry { repeated Item items = 1 }`, `Item { string name =
//! 1; uint32 device = 2; bytes record = 3; bool removed = 4 }`. Record bytes are carried
//! as they are, parsed only when the session is loaded.

use prost::Message;
use zeroize::Zeroizing;

use crate::wire::{WireError, decode_bounded};
use tandem_signal::{DeviceId, ProtocolAddress};

/// Largest log entry accepted: 10 000 sessions of the largest records seen in practice.
pub const MAX_LOG_ENTRY_LEN: usize = 64 * 1024 * 1024;

#[derive(Clone, PartialEq, prost::Message)]
struct ItemProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(uint32, tag = "2")]
    device: u32,
    #[prost(bytes = "vec", tag = "3")]
    record: Vec<u8>,
    #[prost(bool, tag = "4")]
    removed: bool,
}

impl Drop for ItemProto {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.record);
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct EntryProto {
    #[prost(message, repeated, tag = "1")]
    items: Vec<ItemProto>,
}

/// One log entry: per address, the record bytes it saved, or `None` for a removal. Session
/// records hold ratchet secrets, so the bytes are wiped when dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SessionLogEntry {
    /// The changes, in the order they were written.
    pub items: Vec<(ProtocolAddress, Option<Zeroizing<Vec<u8>>>)>,
}

impl std::fmt::Debug for SessionLogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLogEntry").field("items", &self.items.len()).finish()
    }
}

impl SessionLogEntry {
    /// The entry's bytes (secret: they hold session records).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(
            EntryProto {
                items: self
                    .items
                    .iter()
                    .map(|(a, r)| ItemProto {
                        name: a.name().to_owned(),
                        device: a.device_id().get(),
                        record: r.as_ref().map(|r| r.to_vec()).unwrap_or_default(),
                        removed: r.is_none(),
                    })
                    .collect(),
            }
            .encode_to_vec(),
        )
    }

    /// Parses an entry; an address with an invalid device id is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let proto: EntryProto = decode_bounded("session log entry", bytes, MAX_LOG_ENTRY_LEN)?;
        let items = proto
            .items
            .iter()
            .map(|i| {
                let device = DeviceId::new(i.device).map_err(|_| WireError::Malformed {
                    what: "session log entry",
                    reason: format!("device id {} is out of range", i.device),
                })?;
                let record = (!i.removed).then(|| Zeroizing::new(i.record.clone()));
                Ok((ProtocolAddress::new(i.name.clone(), device), record))
            })
            .collect::<Result<_, WireError>>()?;
        Ok(Self { items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(name: &str, device: u32) -> ProtocolAddress {
        ProtocolAddress::new(name, DeviceId::new(device).unwrap())
    }

    #[test]
    fn test_round_trip_keeps_order_and_removals() {
        let entry = SessionLogEntry {
            items: vec![
                (address("a", 1), Some(Zeroizing::new(vec![1, 2, 3]))),
                (address("b", 2), None),
                (address("a", 1), Some(Zeroizing::new(vec![]))),
            ],
        };
        let parsed = SessionLogEntry::from_bytes(&entry.to_bytes()).unwrap();
        assert_eq!(parsed, entry);
        assert_eq!(SessionLogEntry::from_bytes(&[]).unwrap(), SessionLogEntry::default());
    }

    #[test]
    fn test_bad_entries_are_errors() {
        let item = ItemProto { name: "a".into(), device: 0, record: Vec::new(), removed: false };
        let bad_device = EntryProto { items: vec![item] };
        assert!(SessionLogEntry::from_bytes(&bad_device.encode_to_vec()).is_err());
        assert!(SessionLogEntry::from_bytes(&[0x0a, 0x05, 0x01]).is_err());
    }
}
