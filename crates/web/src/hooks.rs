//! Leptos hooks that wrap the browser parts: the relay connection, the device record, the
//! theme and a ticking clock.

mod clock;
mod device;
mod relay;
mod theme;

pub use clock::use_clock;
pub use device::{DeviceStatus, fresh_device, use_device};
pub use relay::{UseRelayOptions, UseRelayReturn, use_relay};
pub use theme::{Theme, UseThemeReturn, use_theme};
