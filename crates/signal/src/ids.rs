//! The ids of prekeys: plain numbers with a type each, shared by the records, the wire
//! formats and the errors.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl From<u32> for $name {
            fn from(v: u32) -> Self {
                Self(v)
            }
        }

        impl From<$name> for u32 {
            fn from(v: $name) -> u32 {
                v.0
            }
        }
    };
}

id_type!(
    /// The id of a one-time Curve25519 prekey.
    PreKeyId
);
id_type!(
    /// The id of a signed Curve25519 prekey.
    SignedPreKeyId
);
id_type!(
    /// The id of a Kyber prekey.
    KyberPreKeyId
);
