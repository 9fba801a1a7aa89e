//! Decoding bounded protobuf bytes, and its error: the one thing every record and wire
//! format shares.

/// Errors from decoding wire bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes are not a valid protobuf encoding of the expected message.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The message type being decoded.
        what: &'static str,
        /// The decoder's explanation.
        reason: String,
    },
    /// The input is larger than the limit for its kind.
    #[error("{what} is {found} bytes, more than the limit of {limit}")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// The limit in bytes.
        limit: usize,
        /// The actual size in bytes.
        found: usize,
    },
    /// A field that must be present is absent.
    #[error("{what} lacks its {field} field")]
    MissingField {
        /// The message type.
        what: &'static str,
        /// The missing field.
        field: &'static str,
    },
}

/// Decodes a protobuf message of at most `limit` bytes (`what` names it in the error): the
/// one way this crate reads protobuf, exported for formats built next to it.
pub fn decode_bounded<M: prost::Message + Default>(
    what: &'static str,
    bytes: &[u8],
    limit: usize,
) -> Result<M, WireError> {
    if bytes.len() > limit {
        return Err(WireError::TooLarge { what, limit, found: bytes.len() });
    }
    M::decode(bytes).map_err(|e| WireError::Malformed { what, reason: e.to_string() })
}
