//! Frames on the client–relay WebSocket.
//!
//! Each WebSocket binary message carries exactly one frame. The client sends
//! [`ClientFrame`]s (requests, and acknowledgements of pushes); the server sends
//! [`ServerFrame`]s (responses, matched by request id, and pushes). Requests are answered
//! in any order; a client may have several in flight.

mod account;
mod calls;
mod devices;
mod groups;
mod messages;
mod prekeys;

pub use account::*;
pub use calls::*;
pub use devices::*;
pub use groups::*;
pub use messages::*;
pub use prekeys::*;

use super::{WireError, decode_bounded};

/// The largest frame either side accepts, in bytes.
pub const MAX_FRAME_LEN: usize = 256 * 1024;
/// The largest ping payload the server echoes.
pub const MAX_PING_PAYLOAD: usize = 1024;

/// A frame from a client to the relay.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClientFrame {
    /// What the frame is.
    #[prost(oneof = "client_frame::Kind", tags = "1, 2")]
    pub kind: Option<client_frame::Kind>,
}

/// The variants of [`ClientFrame`].
pub mod client_frame {
    /// What a client frame carries.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        /// A request, answered by a [`Response`](super::Response) with the same id.
        #[prost(message, tag = "1")]
        Request(super::Request),
        /// The client has durably handled a push.
        #[prost(message, tag = "2")]
        Ack(super::PushAck),
    }
}

/// A request from a client.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    /// Chosen by the client, echoed in the response; unique among its requests in flight.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// What is asked.
    #[prost(
        oneof = "request::Body",
        tags = "10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 25, 26, 27, 28, 29, 31, 33, 34, 35, 36, 37"
    )]
    pub body: Option<request::Body>,
}

/// The variants of [`Request`].
pub mod request {
    use super::{account, calls, devices, groups, messages, prekeys};

    /// What a request asks for. Only `Ping`, `RegisterAccount`, `Authenticate`,
    /// `RegisterDevice` and `OpenProvisioning` are allowed before the socket has
    /// authenticated.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Body {
        /// Liveness check; the server echoes the payload.
        #[prost(message, tag = "10")]
        Ping(super::Ping),
        /// Create an account; this device becomes its primary.
        #[prost(message, tag = "11")]
        RegisterAccount(account::RegisterAccount),
        /// Bind this socket to a device.
        #[prost(message, tag = "12")]
        Authenticate(account::Authenticate),
        /// Primary only: a single-use token to register a companion.
        #[prost(message, tag = "13")]
        CreateLinkToken(devices::CreateLinkToken),
        /// Register a companion device with a link token.
        #[prost(message, tag = "14")]
        RegisterDevice(devices::RegisterDevice),
        /// Primary: remove a companion; a companion: remove itself.
        #[prost(message, tag = "15")]
        RemoveDevice(devices::RemoveDevice),
        /// The devices and signed device list of an account.
        #[prost(message, tag = "16")]
        GetDevices(devices::GetDevices),
        /// Primary only: publish a new signed device list.
        #[prost(message, tag = "17")]
        SetDeviceList(devices::SetDeviceList),
        /// Upload prekeys for this device.
        #[prost(message, tag = "18")]
        UploadPreKeys(prekeys::UploadPreKeys),
        /// Prekey bundles for devices of an account.
        #[prost(message, tag = "19")]
        GetPreKeyBundles(prekeys::GetPreKeyBundles),
        /// How many prekeys this device has left on the server.
        #[prost(message, tag = "20")]
        GetPreKeyCounts(prekeys::GetPreKeyCounts),
        /// One ciphertext per device of the recipient and of the sender's other devices.
        #[prost(message, tag = "21")]
        SendMessages(messages::SendMessages),
        /// Members: one sender-key ciphertext, fanned out by the server.
        #[prost(message, tag = "25")]
        SendGroupMessage(groups::SendGroupMessage),
        /// The account behind a handle.
        #[prost(message, tag = "26")]
        LookupAccount(account::LookupAccount),
        /// Rename this device.
        #[prost(message, tag = "27")]
        UpdateDevice(devices::UpdateDevice),
        /// Before authentication: a provisioning address for this socket.
        #[prost(message, tag = "28")]
        OpenProvisioning(devices::OpenProvisioning),
        /// Primary only: a link message to a provisioning address.
        #[prost(message, tag = "29")]
        SendProvisioning(devices::SendProvisioning),
        /// Primary only: start the account over with a new account key (re-registration).
        #[prost(message, tag = "31")]
        ResetAccount(account::ResetAccount),
        /// Create a group from its first signed state. (Tags 22–24 carried the relay-kept
        /// membership of earlier builds and are not reused.)
        #[prost(message, tag = "33")]
        CreateGroup(groups::CreateGroup),
        /// Publish a group's next signed state.
        #[prost(message, tag = "34")]
        UpdateGroup(groups::UpdateGroup),
        /// Members: a group's signed states.
        #[prost(message, tag = "35")]
        GetGroup(groups::GetGroup),
        /// Invited members: accept or decline a group.
        #[prost(message, tag = "36")]
        AcceptGroup(groups::AcceptGroup),
        /// The STUN and TURN servers for calls.
        #[prost(message, tag = "37")]
        GetIceServers(calls::GetIceServers),
    }
}

/// A liveness probe.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ping {
    /// Opaque bytes echoed back, at most [`MAX_PING_PAYLOAD`].
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
}

/// Acknowledges a push by id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushAck {
    /// The id of the acknowledged [`Push`].
    #[prost(uint64, tag = "1")]
    pub push_id: u64,
}

/// A frame from the relay to a client.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServerFrame {
    /// What the frame is.
    #[prost(oneof = "server_frame::Kind", tags = "1, 2")]
    pub kind: Option<server_frame::Kind>,
}

/// The variants of [`ServerFrame`].
pub mod server_frame {
    /// What a server frame carries.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        /// The answer to a request.
        #[prost(message, tag = "1")]
        Response(super::Response),
        /// Something the server sends on its own.
        #[prost(message, tag = "2")]
        Push(super::Push),
    }
}

/// The outcome class of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Status {
    /// Not set, or a value this build does not know: treat as a failure.
    Unspecified = 0,
    /// The request succeeded.
    Ok = 1,
    /// The request was malformed or violated a rule; `message` says which.
    BadRequest = 2,
    /// The device is not authenticated or not allowed to do this.
    Unauthorized = 3,
    /// The thing asked for does not exist.
    NotFound = 4,
    /// The request conflicts with the current state.
    Conflict = 5,
    /// Too many requests; retry later.
    RateLimited = 6,
    /// The input exceeds a size limit.
    TooLarge = 7,
    /// The server failed; the request may be retried.
    Internal = 8,
    /// The request is not allowed before the socket authenticated.
    Unauthenticated = 9,
    /// A limit was reached (e.g. four companions).
    LimitReached = 10,
    /// The request's timestamp is too far from the relay's clock (the device's clock is
    /// wrong); `message` says by how much. Queued messages are stamped afresh and retried.
    ClockSkew = 11,
    /// The sending device is not (yet) in its account's signed device list; retry once the
    /// primary has published it.
    Unlisted = 12,
    /// A proof was signed for another connection's challenge (the socket was replaced
    /// meanwhile): sign the current one.
    StaleChallenge = 13,
}

/// The answer to a [`Request`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    /// The id of the request answered.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Outcome class; read it with the generated `status()`, which maps values this build
    /// does not know to [`Status::Unspecified`].
    #[prost(enumeration = "Status", tag = "2")]
    pub status: i32,
    /// A short human-readable reason when `status` is not `Ok`.
    #[prost(string, tag = "3")]
    pub message: String,
    /// The result, when there is one.
    #[prost(
        oneof = "response::Body",
        tags = "10, 11, 12, 13, 14, 16, 19, 20, 21, 26, 28, 30, 31, 32, 33"
    )]
    pub body: Option<response::Body>,
}

/// The variants of [`Response`].
pub mod response {
    use super::{account, calls, devices, groups, messages, prekeys};

    /// What a response carries.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Body {
        /// Answer to a ping.
        #[prost(message, tag = "10")]
        Pong(super::Pong),
        /// The new account.
        #[prost(message, tag = "11")]
        Registered(account::Registered),
        /// Who this socket now is.
        #[prost(message, tag = "12")]
        Authenticated(account::Authenticated),
        /// A companion link token.
        #[prost(message, tag = "13")]
        LinkToken(devices::LinkToken),
        /// The companion's device id.
        #[prost(message, tag = "14")]
        DeviceRegistered(devices::DeviceRegistered),
        /// An account's devices.
        #[prost(message, tag = "16")]
        Devices(devices::Devices),
        /// Prekey bundles.
        #[prost(message, tag = "19")]
        PreKeyBundles(prekeys::PreKeyBundles),
        /// Prekey counts.
        #[prost(message, tag = "20")]
        PreKeyCounts(prekeys::PreKeyCounts),
        /// An accepted send.
        #[prost(message, tag = "21")]
        Sent(messages::Sent),
        /// An account found by handle.
        #[prost(message, tag = "26")]
        Account(account::AccountInfo),
        /// This socket's provisioning address.
        #[prost(message, tag = "28")]
        ProvisioningAddress(devices::ProvisioningAddress),
        /// A send refused because its device set is not the current one (status `Conflict`).
        #[prost(message, tag = "30")]
        MismatchedDevices(messages::MismatchedDevices),
        /// Why a login was refused when the device is gone (status `Unauthorized`): the
        /// account's signed device list, for the device to check.
        #[prost(message, tag = "31")]
        Removed(devices::DeviceRemoved),
        /// A group's signed states (answer to `GetGroup`, `CreateGroup`, `UpdateGroup`).
        #[prost(message, tag = "32")]
        GroupStates(groups::GroupStates),
        /// The ICE servers for calls.
        #[prost(message, tag = "33")]
        IceServers(calls::IceServers),
    }
}

/// The answer to a [`Ping`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct Pong {
    /// The ping's payload.
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
    /// The server's clock, milliseconds since the epoch.
    #[prost(uint64, tag = "2")]
    pub server_time_ms: u64,
}

/// Something the server sends on its own.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Push {
    /// Non-zero when the client must acknowledge it with a [`PushAck`].
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// What is pushed.
    #[prost(oneof = "push::Body", tags = "10, 11, 12, 13, 14, 15, 16, 17")]
    pub body: Option<push::Body>,
}

/// The variants of [`Push`].
pub mod push {
    use super::messages;

    /// What a push carries.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Body {
        /// The first frame on every connection.
        #[prost(message, tag = "10")]
        Welcome(super::Welcome),
        /// A queued message for this device; acknowledge it once it is durably handled.
        #[prost(message, tag = "11")]
        Envelope(messages::Envelope),
        /// Every message queued when the socket authenticated has been pushed.
        #[prost(message, tag = "12")]
        QueueDrained(messages::QueueDrained),
        /// Messages that expired in the queue before this device fetched them. It has a
        /// push id: the relay forgets these only once the device acknowledged it (after
        /// recording the gap).
        #[prost(message, tag = "13")]
        Expired(messages::ExpiredMessages),
        /// This device was removed from its account; the socket closes next.
        #[prost(message, tag = "14")]
        DeviceRemoved(super::devices::DeviceRemoved),
        /// A link message for this socket's provisioning address.
        #[prost(message, tag = "15")]
        Provisioning(super::devices::ProvisioningMessage),
        /// A companion joined this account.
        #[prost(message, tag = "16")]
        DeviceLinked(super::devices::DeviceLinked),
        /// A companion of this account was logged out.
        #[prost(message, tag = "17")]
        DeviceUnlinked(super::devices::DeviceUnlinked),
    }
}

/// The first frame the server sends on a new connection.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Welcome {
    /// The server's version string.
    #[prost(string, tag = "1")]
    pub server_version: String,
    /// The server's clock, milliseconds since the epoch.
    #[prost(uint64, tag = "2")]
    pub server_time_ms: u64,
    /// 32 random bytes, fresh for this connection: what logins and registrations on it sign
    /// (see `tandem_core::auth`).
    #[prost(bytes = "vec", tag = "3")]
    pub challenge: Vec<u8>,
}

/// The bytes of a `ServerFrame` pushing a queued envelope, built without decoding it:
/// `stored` is the `Envelope` as the server stored it (without its id); protobuf merges the
/// id field written in front of it. The push id equals the envelope id.
pub fn envelope_push_frame(id: u64, stored: &[u8]) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
    let envelope_len = key_len(1) + encoded_len_varint(id) + stored.len();
    let push_len = key_len(1)
        + encoded_len_varint(id)
        + key_len(11)
        + encoded_len_varint(envelope_len as u64)
        + envelope_len;
    let mut buf = Vec::with_capacity(key_len(2) + encoded_len_varint(push_len as u64) + push_len);
    encode_key(2, WireType::LengthDelimited, &mut buf);
    encode_varint(push_len as u64, &mut buf);
    encode_key(1, WireType::Varint, &mut buf);
    encode_varint(id, &mut buf);
    encode_key(11, WireType::LengthDelimited, &mut buf);
    encode_varint(envelope_len as u64, &mut buf);
    encode_key(1, WireType::Varint, &mut buf);
    encode_varint(id, &mut buf);
    buf.extend_from_slice(stored);
    buf
}

impl ClientFrame {
    /// Decodes a frame received from a client.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        decode_bounded("ClientFrame", bytes, MAX_FRAME_LEN)
    }

    /// A request frame.
    pub fn request(id: u64, body: request::Body) -> Self {
        Self { kind: Some(client_frame::Kind::Request(Request { id, body: Some(body) })) }
    }
}

impl ServerFrame {
    /// Decodes a frame received from the server.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        decode_bounded("ServerFrame", bytes, MAX_FRAME_LEN)
    }

    /// A response frame.
    pub fn response(
        id: u64,
        status: Status,
        message: impl Into<String>,
        body: Option<response::Body>,
    ) -> Self {
        Self {
            kind: Some(server_frame::Kind::Response(Response {
                id,
                status: status as i32,
                message: message.into(),
                body,
            })),
        }
    }

    /// A push frame.
    pub fn push(id: u64, body: push::Body) -> Self {
        Self { kind: Some(server_frame::Kind::Push(Push { id, body: Some(body) })) }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn test_frames_roundtrip() {
        let frame = ClientFrame::request(7, request::Body::Ping(Ping { payload: b"hi".to_vec() }));
        let bytes = frame.encode_to_vec();
        assert_eq!(ClientFrame::from_bytes(&bytes).unwrap(), frame);
        let frame = ServerFrame::response(
            7,
            Status::Ok,
            "",
            Some(response::Body::Pong(Pong { payload: b"hi".to_vec(), server_time_ms: 5 })),
        );
        assert_eq!(ServerFrame::from_bytes(&frame.encode_to_vec()).unwrap(), frame);
    }

    #[test]
    fn test_envelope_push_frame_decodes() {
        let envelope = Envelope {
            id: 0,
            source_account: vec![1; 16],
            source_device: 2,
            r#type: 3,
            content: vec![9; 300],
            client_timestamp: 5,
            server_timestamp: 6,
            group_id: vec![],
        };
        let stored = envelope.encode_to_vec();
        for id in [1u64, 127, 128, 1 << 40] {
            let frame = ServerFrame::from_bytes(&envelope_push_frame(id, &stored)).unwrap();
            let expected =
                ServerFrame::push(id, push::Body::Envelope(Envelope { id, ..envelope.clone() }));
            assert_eq!(frame, expected);
        }
    }

    #[test]
    fn test_bad_frames_are_errors() {
        assert!(matches!(ClientFrame::from_bytes(&[0xff, 0xff]), Err(WireError::Malformed { .. })));
        let big = vec![0u8; MAX_FRAME_LEN + 1];
        assert!(matches!(ServerFrame::from_bytes(&big), Err(WireError::TooLarge { .. })));
        let unknown_status = Response { id: 1, status: 99, message: String::new(), body: None };
        assert_eq!(unknown_status.status(), Status::Unspecified);
    }
}
