//! A group's info screen: its title, its members with their roles and whether this person
//! verified them, and (for an admin) adding, removing, promoting, demoting and renaming.
//!
//! Everything here is the group's signed state as this device verified it; a change is a new
//! state this device signs (`tandem_core::client::Client::update_group`), which every member
//! checks before taking it. The member list is virtualised: a 1 024-member group puts a
//! screenful of rows in the document, and names and verification are read for those rows
//! only.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use tandem_core::AccountId;
use tandem_core::client::{DeviceListRecord, GroupRecord};
use tandem_core::group_state::MAX_GROUP_TITLE_CHARS;
use wasm_bindgen::JsCast;

use super::group::find_all;
use crate::device::{Command, Device};
use crate::groups::{member_order, trust_label, typed_handles, visible_rows};

/// Height of one member row, in CSS pixels, until a drawn row is measured (the stylesheet's
/// `.member-row`; taller on narrow screens).
const ROW_PX: i32 = 56;
/// Rows drawn beyond each edge of the view, so a quick scroll shows no gap.
const OVERSCAN: usize = 6;
/// The view's height assumed until it is measured.
const FIRST_VIEW_PX: i32 = 480;

/// An admin's change to the group.
#[derive(Clone, Default)]
struct Edit {
    add: Vec<Vec<u8>>,
    remove: Vec<Vec<u8>>,
    promote: Vec<Vec<u8>>,
    demote: Vec<Vec<u8>>,
    title: Option<String>,
}

/// The info screen of group `group`, as `record` holds it; `names` are the names learned so
/// far (shared with the conversation, filled here for the rows in view).
#[component]
pub(crate) fn GroupInfo(
    engine: StoredValue<SendWrapper<Device>>,
    revision: ReadSignal<u64>,
    group: [u8; 16],
    record: RwSignal<Option<GroupRecord>>,
    names: RwSignal<HashMap<AccountId, String>>,
    on_close: Callback<()>,
) -> impl IntoView {
    let me = engine.with_value(|e| e.account_id());
    let is_admin =
        move || record.with(|r| r.as_ref().is_some_and(|r| r.state.state().is_admin(&me)));
    // The names known when the screen opened or the members last changed order the list
    // (names learned while scrolling do not move rows under the person's eyes).
    let known = RwSignal::new(HashMap::<AccountId, String>::new());
    Effect::new(move |_| {
        record.track();
        let e = engine.get_value();
        spawn_local(async move {
            if let Ok(contacts) = e.store().contacts().await {
                known.set(contacts);
            }
        });
    });
    let members = Memo::new(move |_| {
        known.with(|k| {
            record.with(|r| {
                r.as_ref().map(|r| member_order(r.state.state(), me, k)).unwrap_or_default()
            })
        })
    });
    let busy = RwSignal::new(false);
    let status = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());

    // Runs one change: one signed state, announced to every member.
    let apply = move |edit: Edit, doing: String, done: String| {
        busy.set(true);
        error.set(String::new());
        status.set(doing);
        let e = engine.get_value();
        spawn_local(async move {
            let Edit { add, remove, promote, demote, title } = edit;
            let result = e
                .run(Command::EditGroup {
                    group: group.to_vec(),
                    add,
                    remove,
                    promote,
                    demote,
                    title,
                })
                .await;
            busy.set(false);
            match result {
                Ok(_) => status.set(done),
                Err(err) => {
                    status.set(String::new());
                    error.set(err.message);
                }
            }
        });
    };

    // Renaming: the field follows the group's title until the person types.
    let title = RwSignal::new(String::new());
    let typed = RwSignal::new(false);
    Effect::new(move |_| {
        let current = record.with(|r| r.as_ref().map(|r| r.state.state().title.clone()));
        if let Some(t) = current
            && !typed.get_untracked()
        {
            title.set(t);
        }
    });
    let rename = move || {
        let t = title.get_untracked().trim().to_owned();
        if t.is_empty() {
            error.set("Give the group a name.".into());
            return;
        }
        if t.chars().count() > MAX_GROUP_TITLE_CHARS {
            error.set(format!("A group name is at most {MAX_GROUP_TITLE_CHARS} characters."));
            return;
        }
        let same =
            record.with_untracked(|r| r.as_ref().is_some_and(|r| r.state.state().title == t));
        if same {
            return;
        }
        typed.set(false);
        let done = format!("Renamed to “{t}”.");
        apply(Edit { title: Some(t), ..Edit::default() }, "Renaming…".into(), done);
    };

    // Adding people by the names they chose.
    let adding = RwSignal::new(String::new());
    let add = move || {
        let handles = typed_handles(&adding.get_untracked());
        if handles.is_empty() {
            error.set("Type the Tandem names of the people to add.".into());
            return;
        }
        busy.set(true);
        error.set(String::new());
        let e = engine.get_value();
        spawn_local(async move {
            let found = find_all(&e, &handles, status).await;
            busy.set(false);
            match found {
                Ok(ids) => {
                    // Those in the group already are left out (no empty change is signed).
                    let (new, new_ids): (Vec<String>, Vec<Vec<u8>>) = handles
                        .into_iter()
                        .zip(ids)
                        .filter(|(_, id)| {
                            let member = AccountId::from_bytes(id).ok().is_some_and(|a| {
                                record.with_untracked(|r| {
                                    r.as_ref().is_some_and(|r| r.state.state().is_member(&a))
                                })
                            });
                            !member
                        })
                        .unzip();
                    if new.is_empty() {
                        status.set(String::new());
                        error.set("They are in the group already.".into());
                        return;
                    }
                    adding.set(String::new());
                    let done = format!("Added {}.", crate::text::people(&new));
                    apply(Edit { add: new_ids, ..Edit::default() }, "Adding…".into(), done);
                }
                Err(why) => {
                    status.set(String::new());
                    error.set(why);
                }
            }
        });
    };

    // The rows in view, and what is known about them.
    let scroll = NodeRef::<leptos::html::Div>::new();
    let top = RwSignal::new(0i32);
    let height = RwSignal::new(FIRST_VIEW_PX);
    let row_px = RwSignal::new(ROW_PX);
    let range = Memo::new(move |_| {
        visible_rows(top.get(), height.get(), row_px.get(), members.with(Vec::len), OVERSCAN)
    });
    let trust = RwSignal::new(HashMap::<AccountId, DeviceListRecord>::new());
    Effect::new(move |_| {
        revision.track();
        let shown: Vec<AccountId> = members
            .with(|m| m[range.get()].iter().map(|m| m.account_id).filter(|a| *a != me).collect());
        let e = engine.get_value();
        spawn_local(async move {
            for a in shown {
                if !names.with_untracked(|n| n.contains_key(&a)) {
                    let name = e.name_of(a).await;
                    names.update(|n| {
                        n.insert(a, name);
                    });
                }
                if let Some(r) = e.trust(a).await {
                    trust.update(|t| {
                        t.insert(a, r);
                    });
                }
            }
        });
    });
    // Measures the view and a drawn row (the stylesheet decides their heights).
    let measure = move |el: &web_sys::Element| {
        height.set(el.client_height().max(1));
        let row = el
            .query_selector(".member-row")
            .ok()
            .flatten()
            .and_then(|r| r.dyn_into::<web_sys::HtmlElement>().ok())
            .map(|r| r.offset_height())
            .filter(|h| *h > 0);
        if let Some(h) = row
            && h != row_px.get_untracked()
        {
            row_px.set(h);
        }
    };
    Effect::new(move |_| {
        members.track();
        if let Some(el) = scroll.get() {
            request_animation_frame(move || measure(&el));
        }
    });
    // A window made narrower or wider changes the rows' height.
    let resized = window_event_listener(leptos::ev::resize, move |_| {
        if let Some(el) = scroll.get_untracked() {
            measure(&el);
        }
    });
    on_cleanup(move || resized.remove());
    let confirm_remove = RwSignal::new(None::<AccountId>);
    let rows = move || {
        let r = range.get();
        members.with(|m| m[r.clone()].iter().cloned().zip(r).collect::<Vec<_>>())
    };
    let count = move || members.with(Vec::len);

    view! {
        <section class="group-info code-pane" role="region" aria-label="Group info" data-testid="group-info">
            <div class="code-head">
                <h3>"Group info"</h3>
                <button class="button button-small button-quiet" data-testid="close-group-info" on:click=move |_| on_close.run(())>"Done"</button>
            </div>
            <Show
                when=is_admin
                fallback=move || view! {
                    <p class="muted small">"Only the group's admins change its name and members."</p>
                }
            >
                <form class="rename-form" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); rename(); }>
                    <label for="group-rename-input" class="visually-hidden">"Group name"</label>
                    <input
                        id="group-rename-input"
                        data-testid="group-rename-input"
                        maxlength=MAX_GROUP_TITLE_CHARS.to_string()
                        autocomplete="off"
                        prop:value=move || title.get()
                        on:input=move |ev| {
                            typed.set(true);
                            title.set(event_target_value(&ev));
                        }
                    />
                    <button class="button button-small" type="submit" data-testid="group-rename" disabled=move || busy.get()>"Rename"</button>
                </form>
                <form class="rename-form" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); add(); }>
                    <label for="group-add-input" class="visually-hidden">"People to add (their Tandem names)"</label>
                    <input
                        id="group-add-input"
                        data-testid="group-add-input"
                        placeholder="Add people: dave, erin"
                        autocomplete="off"
                        spellcheck="false"
                        prop:value=move || adding.get()
                        on:input=move |ev| adding.set(event_target_value(&ev))
                    />
                    <button class="button button-small button-primary" type="submit" data-testid="group-add" disabled=move || busy.get()>"Add"</button>
                </form>
                <p class="muted small">"People added see messages sent after they join, never earlier ones."</p>
            </Show>
            <p class="small" role="status" aria-live="polite" data-testid="group-info-status">
                {move || busy.get().then(|| view! { <span class="spinner small-spinner" aria-hidden="true"></span>" " })}
                {move || status.get()}
            </p>
            <super::progress::WorkLine/>
            <p class="error small" role="alert" data-testid="group-info-error">{move || error.get()}</p>
            <h4 id="group-members-heading">{move || match count() {
                1 => "1 member".to_owned(),
                n => format!("{n} members"),
            }}</h4>
            <div
                class="member-scroll"
                node_ref=scroll
                on:scroll=move |ev| {
                    if let Some(el) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
                        top.set(el.scroll_top());
                        measure(&el);
                    }
                }
            >
                <ul
                    class="member-list"
                    aria-labelledby="group-members-heading"
                    data-testid="group-members-list"
                    style=move || format!(
                        "height: {}px; padding-top: {}px",
                        i32::try_from(count()).unwrap_or(i32::MAX).saturating_mul(row_px.get()),
                        i32::try_from(range.get().start).unwrap_or(0).saturating_mul(row_px.get()),
                    )
                >
                    <For each=rows key=|(m, i)| (m.account_id, m.admin, *i) let:row>
                        {
                            let (member, index) = row;
                            let a = member.account_id;
                            let you = a == me;
                            let name = move || {
                                if you {
                                    return "You".to_owned();
                                }
                                names.with(|n| n.get(&a).cloned()).unwrap_or_else(|| crate::device::short_name(a))
                            };
                            let known = move || trust.with(|t| trust_label(t.get(&a)));
                            let remove = move || {
                                confirm_remove.set(None);
                                let done = format!("Removed {}.", name());
                                apply(Edit { remove: vec![a.0.to_vec()], ..Edit::default() }, "Removing…".into(), done);
                            };
                            let role = move |promote: bool| {
                                let (edit, done) = if promote {
                                    (Edit { promote: vec![a.0.to_vec()], ..Edit::default() }, format!("{} is an admin now.", name()))
                                } else {
                                    (Edit { demote: vec![a.0.to_vec()], ..Edit::default() }, format!("{} is no longer an admin.", name()))
                                };
                                apply(edit, "Saving…".into(), done);
                            };
                            view! {
                                <li class="member-row" data-testid="group-member" aria-setsize=move || count().to_string() aria-posinset=(index + 1).to_string()>
                                    <span class="avatar" aria-hidden="true">{move || name().chars().next().unwrap_or('?').to_uppercase().to_string()}</span>
                                    <span class="member-main">
                                        <span class="member-name" data-testid="member-name">{name}</span>
                                        <span class="member-tags">
                                            {member.admin.then(|| view! { <span class="pill" data-testid="member-admin">"Admin"</span> })}
                                            {(!you).then(|| view! {
                                                <span class=move || known().1 data-testid="member-trust">{move || known().0}</span>
                                            })}
                                        </span>
                                    </span>
                                    <Show when=move || is_admin() && !you>
                                        <span class="member-actions">
                                            <Show
                                                when=move || confirm_remove.get() == Some(a)
                                                fallback=move || view! {
                                                    {if member.admin {
                                                        view! { <button class="button button-small button-quiet" data-testid="member-demote" disabled=move || busy.get() aria-label=move || format!("Dismiss {} as admin", name()) on:click=move |_| role(false)>"Dismiss as admin"</button> }.into_any()
                                                    } else {
                                                        view! { <button class="button button-small button-quiet" data-testid="member-promote" disabled=move || busy.get() aria-label=move || format!("Make {} an admin", name()) on:click=move |_| role(true)>"Make admin"</button> }.into_any()
                                                    }}
                                                    <button class="button button-small button-quiet" data-testid="member-remove" disabled=move || busy.get() aria-label=move || format!("Remove {} from the group", name()) on:click=move |_| confirm_remove.set(Some(a))>"Remove"</button>
                                                }
                                            >
                                                <span class="small">{move || format!("Remove {}?", name())}</span>
                                                <button class="button button-small button-quiet" data-testid="member-remove-cancel" on:click=move |_| confirm_remove.set(None)>"Cancel"</button>
                                                <button class="button button-small danger" data-testid="member-remove-confirm" on:click=move |_| remove()>"Remove"</button>
                                            </Show>
                                        </span>
                                    </Show>
                                </li>
                            }
                        }
                    </For>
                </ul>
            </div>
        </section>
    }
}
