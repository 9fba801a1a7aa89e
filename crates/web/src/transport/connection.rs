//! One open WebSocket to the relay.

use futures_channel::mpsc;
use futures_util::StreamExt;
use prost::Message as _;
use tandem_core::wire::relay::{ClientFrame, ServerFrame, Welcome, push, server_frame};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use super::TransportError;

enum SocketEvent {
    Open,
    Message(Vec<u8>),
    Text,
    Close { code: u16, reason: String },
    Error,
}

/// The sending side of an open socket. Dropping it closes the socket and releases its JS
/// callbacks.
pub struct RelayConnection {
    ws: WebSocket,
    _callbacks: Callbacks,
}

/// The receiving side of an open socket: frames in arrival order. Reading is cancel-safe.
pub struct RelayEvents {
    ws: WebSocket,
    rx: mpsc::UnboundedReceiver<SocketEvent>,
}

struct Callbacks {
    ws: WebSocket,
    _open: Closure<dyn FnMut()>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
    _error: Closure<dyn FnMut()>,
}

impl Drop for Callbacks {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        let _ = self.ws.close();
    }
}

impl RelayConnection {
    /// Opens a socket to `url` and waits for the relay's welcome.
    pub async fn connect(url: &str) -> Result<(Self, RelayEvents, Welcome), TransportError> {
        let ws = WebSocket::new(url).map_err(|e| TransportError::Browser(js_error(&e)))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let (tx, rx) = mpsc::unbounded();

        let open_tx = tx.clone();
        let open = Closure::<dyn FnMut()>::new(move || {
            let _ = open_tx.unbounded_send(SocketEvent::Open);
        });
        let msg_tx = tx.clone();
        let message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let event = match e.data().dyn_into::<js_sys::ArrayBuffer>() {
                Ok(buf) => SocketEvent::Message(js_sys::Uint8Array::new(&buf).to_vec()),
                Err(_) => SocketEvent::Text,
            };
            let _ = msg_tx.unbounded_send(event);
        });
        let close_tx = tx.clone();
        let close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            let _ =
                close_tx.unbounded_send(SocketEvent::Close { code: e.code(), reason: e.reason() });
        });
        let error = Closure::<dyn FnMut()>::new(move || {
            let _ = tx.unbounded_send(SocketEvent::Error);
        });
        ws.set_onopen(Some(open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(error.as_ref().unchecked_ref()));

        let mut events = RelayEvents { ws: ws.clone(), rx };
        let conn = Self {
            ws: ws.clone(),
            _callbacks: Callbacks {
                ws,
                _open: open,
                _message: message,
                _close: close,
                _error: error,
            },
        };
        match events.next_event().await {
            SocketEvent::Open => {}
            SocketEvent::Close { .. } | SocketEvent::Error => {
                return Err(TransportError::Unreachable);
            }
            SocketEvent::Message(_) | SocketEvent::Text => {
                return Err(TransportError::Protocol("data before open".into()));
            }
        }
        let first = events.next_frame().await?;
        match first.kind {
            Some(server_frame::Kind::Push(tandem_core::wire::relay::Push {
                body: Some(push::Body::Welcome(welcome)),
                ..
            })) => Ok((conn, events, welcome)),
            _ => Err(TransportError::Protocol("the server did not start with a welcome".into())),
        }
    }

    /// Sends one frame.
    pub fn send(&self, frame: &ClientFrame) -> Result<(), TransportError> {
        if self.ws.ready_state() != WebSocket::OPEN {
            return Err(TransportError::NotConnected);
        }
        self.ws
            .send_with_u8_array(&frame.encode_to_vec())
            .map_err(|e| TransportError::Browser(js_error(&e)))
    }

    /// Closes the socket with `code` (browsers allow 1000 and 3000–4999) and `reason`.
    pub fn close(&self, code: u16, reason: &str) {
        let _ = self.ws.close_with_code_and_reason(code, reason);
    }
}

/// Close codes the client uses (the private range, since browsers forbid the 1xxx ones).
pub mod close_code {
    /// The server stopped answering keepalives.
    pub const KEEPALIVE_UNANSWERED: u16 = 4000;
    /// The server sent a text frame.
    pub const TEXT_FRAME: u16 = 4003;
    /// The server sent a frame that does not parse.
    pub const MALFORMED_FRAME: u16 = 4007;
}

impl RelayEvents {
    async fn next_event(&mut self) -> SocketEvent {
        // A closed channel (callbacks released) reads as an abnormal close.
        self.rx.next().await.unwrap_or(SocketEvent::Close { code: 1006, reason: String::new() })
    }

    /// The next frame from the relay; an error once the socket has closed.
    pub async fn next_frame(&mut self) -> Result<ServerFrame, TransportError> {
        loop {
            match self.next_event().await {
                SocketEvent::Message(bytes) => {
                    return ServerFrame::from_bytes(&bytes).map_err(|e| {
                        let _ = self.ws.close_with_code_and_reason(
                            close_code::MALFORMED_FRAME,
                            "malformed frame",
                        );
                        TransportError::Protocol(e.to_string())
                    });
                }
                SocketEvent::Text => {
                    let _ = self
                        .ws
                        .close_with_code_and_reason(close_code::TEXT_FRAME, "binary frames only");
                    return Err(TransportError::Protocol("text frame".into()));
                }
                SocketEvent::Close { code, reason } => {
                    return Err(TransportError::Closed { code, reason });
                }
                // An error event is always followed by a close event.
                SocketEvent::Error | SocketEvent::Open => {}
            }
        }
    }
}

/// A JS exception as an owned string.
pub(crate) fn js_error(e: &wasm_bindgen::JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|err| String::from(err.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".into())
}
