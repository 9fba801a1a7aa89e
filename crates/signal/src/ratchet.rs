//! The state the protocol keeps between messages, apart from the operations on it: the
//! Double Ratchet's chain and root keys, session states and records, and sender-key records.
//! The store traits hold these records, and the session and sender-key operations read
//! and return them, so they sit below both.

pub(crate) mod chain;
pub(crate) mod sender_key;
pub(crate) mod session_record;
pub(crate) mod state;

/// A group distribution id (a UUID: one per group and sending device).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DistributionId(pub [u8; 16]);

impl std::fmt::Display for DistributionId {
    /// The UUID's text form: 8-4-4-4-12 lowercase hex digits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A string that is not a UUID's text form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a UUID (expected 8-4-4-4-12 hex digits)")]
pub struct InvalidDistributionId;

impl std::str::FromStr for DistributionId {
    type Err = InvalidDistributionId;

    /// Reads a UUID's text form (either case); braces, URNs and other forms are refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 36 {
            return Err(InvalidDistributionId);
        }
        let mut digits = Vec::with_capacity(32);
        for (i, &c) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(InvalidDistributionId);
                }
                continue;
            }
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(InvalidDistributionId),
            };
            digits.push(d);
        }
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (pair[0] << 4) | pair[1];
        }
        Ok(Self(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_distribution_id_reads_back_from_its_uuid_text() {
        let id = DistributionId([
            0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17,
            0x40, 0x00,
        ]);
        assert_eq!(id.to_string(), "123e4567-e89b-12d3-a456-426614174000");
        assert_eq!("123E4567-E89B-12D3-A456-426614174000".parse(), Ok(id));
        for bad in [
            "",
            "123e4567e89b12d3a456426614174000",
            "{123e4567-e89b-12d3-a456-426614174000}",
            "123e4567-e89b-12d3-a456-42661417400g",
            "123e4567+e89b-12d3-a456-426614174000",
            "123e4567-e89b-12d3-a456-4266141740000",
            "123e4567-e89b-12d3-a456-42661417400\u{e9}",
        ] {
            assert_eq!(bad.parse::<DistributionId>(), Err(InvalidDistributionId), "{bad}");
        }
    }
}
