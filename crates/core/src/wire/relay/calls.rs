//! What the relay tells devices about making calls: the ICE (STUN and TURN) servers.

/// Most ICE servers a relay hands out (a longer list only slows every call's setup).
pub const MAX_ICE_SERVERS: usize = 8;

/// Asks for the ICE servers calls should use (authenticated devices only: TURN
/// credentials cost the operator bandwidth).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetIceServers {}

/// One `RTCIceServer`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs.
    #[prost(string, repeated, tag = "1")]
    pub urls: Vec<String>,
    /// For TURN: the time-limited user name (`<expiry>:<account>`), else empty.
    #[prost(string, tag = "2")]
    pub username: String,
    /// For TURN: the credential for `username`, else empty.
    #[prost(string, tag = "3")]
    pub credential: String,
}

/// The ICE servers, and until when their credentials hold.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IceServers {
    /// Empty: the relay names none (calls use host candidates and whatever the network
    /// allows).
    #[prost(message, repeated, tag = "1")]
    pub servers: Vec<IceServer>,
    /// When the TURN credentials expire (the relay's clock, milliseconds); 0 without TURN.
    #[prost(uint64, tag = "2")]
    pub expires_ms: u64,
}
