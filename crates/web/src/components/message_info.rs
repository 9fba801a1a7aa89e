//! A sent message's info: who got it and who read it. In a group, each member by what their
//! devices confirmed (receipts go pairwise to the sender, so only the sender knows); in a
//! direct chat, each of the other person's devices that confirmed it.

use std::collections::HashMap;

use leptos::prelude::*;
use send_wrapper::SendWrapper;
use tandem_core::AccountId;
use tandem_core::client::{Conversation, GroupRecord, MessageId, MessageRecord};

use super::chat::short_time;
use crate::device::Device;
use crate::groups::reached;

#[component]
pub(super) fn MessageInfo(
    engine: StoredValue<SendWrapper<Device>>,
    /// The message (followed as receipts arrive).
    id: MessageId,
    /// The conversation's loaded messages.
    messages: RwSignal<Vec<MessageRecord>>,
    /// For a group: its record as this device verified it.
    group: RwSignal<Option<GroupRecord>>,
    /// Names learned so far (the info adds those it needs).
    names: RwSignal<HashMap<AccountId, String>>,
    /// In a direct chat: the other person's name.
    peer_name: String,
    on_close: Callback<()>,
) -> impl IntoView {
    let me = engine.with_value(|e| e.account_id());
    let record = move || messages.with(|l| l.iter().find(|m| m.id == id).cloned());
    let members = move || {
        group.with(|g| {
            g.as_ref().map(|g| g.state.state().accounts().collect::<Vec<_>>()).unwrap_or_default()
        })
    };
    // Names of the people listed, read once each.
    Effect::new(move |_| {
        let Some(m) = record() else { return };
        if !matches!(m.conversation, Conversation::Group(_)) {
            return;
        }
        let mut wanted: Vec<AccountId> = members();
        wanted.extend(m.read_by.iter().copied());
        wanted.extend(m.delivered_to.iter().map(|(a, _)| *a));
        wanted.retain(|a| *a != me);
        super::names::learn(engine, names, wanted);
    });
    let name = move |a: &AccountId| {
        names.with(|n| n.get(a).cloned()).unwrap_or_else(|| crate::device::short_name(*a))
    };
    let people = move |list: Vec<AccountId>, status: &'static str| {
        list.into_iter()
            .map(|a| {
                view! {
                    <li class="receipt-row" data-testid="receipt-row" data-status=status>
                        <span class="avatar small-avatar" aria-hidden="true">{name(&a).chars().next().unwrap_or('?').to_uppercase().to_string()}</span>
                        <span class="receipt-name" data-testid="receipt-name">{name(&a)}</span>
                    </li>
                }
            })
            .collect_view()
    };
    let body = move || {
        let Some(m) = record() else {
            return view! { <p class="muted small">"This message is no longer loaded."</p> }
                .into_any();
        };
        match m.conversation {
            Conversation::Group(_) => {
                let r = reached(&m, &members(), me);
                let total = m.audience();
                let summary = format!(
                    "Read by {} of {total} · delivered to {} of {total}",
                    r.read.len(),
                    r.read.len() + r.delivered.len()
                );
                let waiting_line = match (r.waiting, r.waiting_for.is_empty()) {
                    (0, _) => None,
                    (n, true) => Some(if n == 1 {
                        "1 member has not received it yet.".to_owned()
                    } else {
                        format!("{n} members have not received it yet.")
                    }),
                    (_, false) => None,
                };
                view! {
                    <p class="small" data-testid="receipt-summary">{summary}</p>
                    {(!r.read.is_empty()).then(|| view! {
                        <h4>"Read by"</h4>
                        <ul class="receipt-list" aria-label="Read by">{people(r.read.clone(), "read")}</ul>
                    })}
                    {(!r.delivered.is_empty()).then(|| view! {
                        <h4>"Delivered to"</h4>
                        <ul class="receipt-list" aria-label="Delivered to">{people(r.delivered.clone(), "delivered")}</ul>
                    })}
                    {(!r.waiting_for.is_empty()).then(|| view! {
                        <h4>"Not received yet"</h4>
                        <ul class="receipt-list" aria-label="Not received yet">{people(r.waiting_for.clone(), "waiting")}</ul>
                    })}
                    {waiting_line.map(|l| view! { <p class="muted small">{l}</p> })}
                }
                .into_any()
            }
            Conversation::Direct(_) => {
                let read = m.is_read();
                let devices: Vec<u32> = m.delivered_to.iter().map(|(_, d)| d.get()).collect();
                let state = if read {
                    format!("Read by {}", peer_name.clone())
                } else if devices.is_empty() {
                    "Not delivered yet".to_owned()
                } else {
                    format!("Delivered to {}", peer_name.clone())
                };
                view! {
                    <p class="small" data-testid="receipt-summary">{state}</p>
                    {(!devices.is_empty()).then(|| view! {
                        <h4>"Their devices that have it"</h4>
                        <ul class="receipt-list" aria-label="Devices that have it">
                            {devices.into_iter().map(|d| view! {
                                <li class="receipt-row" data-testid="receipt-row" data-status="delivered">
                                    <span class="receipt-name" data-testid="receipt-name">{if d == 1 { "Primary device".to_owned() } else { format!("Linked device {d}") }}</span>
                                </li>
                            }).collect_view()}
                        </ul>
                    })}
                }
                .into_any()
            }
        }
    };
    let text = move || record().map(|m| m.body).unwrap_or_default();
    let sent = move || record().map(|m| short_time(m.shown_time())).unwrap_or_default();
    view! {
        <section class="message-info code-pane" role="region" aria-label="Message info" data-testid="message-info-panel">
            <div class="code-head">
                <h3>"Message info"</h3>
                <button class="button button-small button-quiet" data-testid="close-message-info" on:click=move |_| on_close.run(())>"Done"</button>
            </div>
            <blockquote class="info-quote">
                <p class="body">{text}</p>
                <p class="muted small">"Sent "<time>{sent}</time></p>
            </blockquote>
            {body}
        </section>
    }
}
