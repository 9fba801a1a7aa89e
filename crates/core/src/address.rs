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
