//! Who a session or sender key belongs to: an account name and one of its devices.

use std::fmt;

/// A device number within an account: 1 is the primary, companions get 2 and up.
/// libsignal allows 1..=127 on the wire, and so does Tandem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(u8);

/// A device id outside 1..=127.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("device id {0} is outside 1..=127")]
pub struct InvalidDeviceId(pub u32);

impl DeviceId {
    /// The primary device.
    pub const PRIMARY: Self = Self(1);
    /// The largest device id.
    pub const MAX: u32 = 127;

    /// A validated device id.
    pub fn new(id: u32) -> Result<Self, InvalidDeviceId> {
        match u8::try_from(id) {
            Ok(v) if (1..=127).contains(&v) => Ok(Self(v)),
            _ => Err(InvalidDeviceId(id)),
        }
    }

    /// The number.
    pub fn get(self) -> u32 {
        u32::from(self.0)
    }

    /// Whether this is the primary device.
    pub fn is_primary(self) -> bool {
        self == Self::PRIMARY
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A server-assigned account id: 16 random bytes, written as 32 lowercase hex digits (the
/// name in a [`ProtocolAddress`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub [u8; 16]);

/// Bytes that are not a 16-byte account id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an account id is 16 bytes, found {0}")]
pub struct InvalidAccountId(pub usize);

impl AccountId {
    /// Parses 16 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidAccountId> {
        bytes.try_into().map(Self).map_err(|_| InvalidAccountId(bytes.len()))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The address of one of its devices.
    pub fn address(&self, device: DeviceId) -> ProtocolAddress {
        ProtocolAddress::new(self.to_string(), device)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({self})")
    }
}

/// One device of one account: the unit a pairwise session is kept with.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtocolAddress {
    name: String,
    device_id: DeviceId,
}

impl ProtocolAddress {
    /// The device `device_id` of the account `name`.
    pub fn new(name: impl Into<String>, device_id: DeviceId) -> Self {
        Self { name: name.into(), device_id }
    }

    /// The account name (Tandem uses the account id).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device.
    pub fn device_id(&self) -> DeviceId {
        self.device_id
    }
}

impl fmt::Display for ProtocolAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.name, self.device_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_device_id_range() {
        assert_eq!(DeviceId::new(0), Err(InvalidDeviceId(0)));
        assert_eq!(DeviceId::new(128), Err(InvalidDeviceId(128)));
        assert_eq!(DeviceId::new(u32::MAX), Err(InvalidDeviceId(u32::MAX)));
        assert_eq!(DeviceId::new(1).unwrap(), DeviceId::PRIMARY);
        assert_eq!(DeviceId::new(127).unwrap().get(), 127);
        assert_eq!(ProtocolAddress::new("a", DeviceId::new(3).unwrap()).to_string(), "a.3");
    }
}
