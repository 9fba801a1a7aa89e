//! Leptos components of the app shell.

mod call;
mod chat;
mod connection;
mod conversation;
mod device_card;
mod devices;
mod group;
mod group_info;
mod icons;
mod link;
mod lock;
mod message_info;
mod names;

mod onboarding;
mod progress;
mod server_card;
mod theme_toggle;
mod trust;

pub(crate) use call::{CallScreen, CallsContext};
pub(crate) use chat::{ChatRow, Messenger, MessengerPreview, chat_rows};
pub(crate) use connection::{ConnectionBadge, OfflineBanner};
pub(crate) use device_card::DeviceCard;
pub(crate) use devices::ResetKeys;
pub(crate) use icons::Logo;
pub(crate) use link::LinkThisBrowser;
pub(crate) use lock::LockScreen;
pub(crate) use onboarding::CreateAccount;
pub(crate) use progress::WorkContext;
pub(crate) use server_card::ServerCard;
pub(crate) use theme_toggle::ThemeToggle;
