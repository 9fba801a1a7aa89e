//! Groups in the messenger: the form that creates one, and the invitation a stranger's
//! group waits behind until the person joins or declines (the relay routes nothing to this
//! account before). Membership is the group's signed state as this device verified it
//! (`tandem_core::group_state`), never the relay's word.

use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use tandem_core::client::Conversation;

use crate::device::{Command, Device, Outcome};
use crate::groups::typed_handles;

/// Most members typed into the form at once (the relay takes up to 1 024 per group; more
/// are added from the group's info later).
const MAX_TYPED_MEMBERS: usize = 64;

/// Most people offered from the chat list.
const MAX_PICKS: usize = 24;

/// Finds each of `handles` (saying which in `progress`): their account ids' bytes, or what
/// went wrong with the first that failed.
pub(crate) async fn find_all(
    e: &Device,
    handles: &[String],
    progress: RwSignal<String>,
) -> Result<Vec<Vec<u8>>, String> {
    let mut ids = Vec::with_capacity(handles.len());
    for (i, h) in handles.iter().enumerate() {
        progress.set(format!("Finding {h} ({} of {})…", i + 1, handles.len()));
        match e.find(h).await {
            Ok((id, _)) => ids.push(id.0.to_vec()),
            Err(err) => return Err(format!("{h}: {}", err.message)),
        }
    }
    Ok(ids)
}

/// The form that creates a group: a title and the members' names. Opens the new group.
#[component]
pub(crate) fn NewGroup(
    engine: StoredValue<SendWrapper<Device>>,
    /// Opens the group once it exists (its conversation and title).
    on_created: Callback<(Conversation, String)>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let title = RwSignal::new(String::new());
    let members = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let progress = RwSignal::new(String::new());
    // The people this account has chats with (newest first), to pick with one click.
    let contacts = RwSignal::new(Vec::<String>::new());
    {
        let e = engine.get_value();
        spawn_local(async move {
            let Ok(list) = e.conversations().await else { return };
            let mut names = Vec::new();
            for summary in list.iter().take(MAX_PICKS) {
                if let Conversation::Direct(a) = summary.conversation
                    && let Ok(Some(h)) = e.store().contact(&a).await
                {
                    names.push(h);
                }
            }
            contacts.set(names);
        });
    }
    let picked = move |h: &str| typed_handles(&members.get()).iter().any(|t| t == h);
    let toggle = move |h: String| {
        let mut list = typed_handles(&members.get_untracked());
        if let Some(i) = list.iter().position(|t| *t == h) {
            list.remove(i);
        } else {
            list.push(h);
        }
        members.set(list.join(", "));
    };
    let create = move || {
        let name = title.get_untracked().trim().to_owned();
        let handles = typed_handles(&members.get_untracked());
        if name.is_empty() {
            error.set("Give the group a name.".into());
            return;
        }
        if handles.is_empty() {
            error.set("Add at least one person by the name they chose for Tandem.".into());
            return;
        }
        if handles.len() > MAX_TYPED_MEMBERS {
            error.set(format!(
                "Add at most {MAX_TYPED_MEMBERS} people here; add more from the group later."
            ));
            return;
        }
        let e = engine.get_value();
        if handles.iter().any(|h| h == e.handle()) {
            error.set("You are in the group already: add other people.".into());
            return;
        }
        busy.set(true);
        error.set(String::new());
        spawn_local(async move {
            let ids = match find_all(&e, &handles, progress).await {
                Ok(ids) => ids,
                Err(why) => {
                    error.set(why);
                    progress.set(String::new());
                    busy.set(false);
                    return;
                }
            };
            progress.set("Creating the group…".into());
            let created = e.run(Command::CreateGroup { title: name.clone(), members: ids }).await;
            progress.set(String::new());
            busy.set(false);
            match created {
                Ok(Outcome::GroupCreated { group }) => match <[u8; 16]>::try_from(group) {
                    Ok(g) => on_created.run((Conversation::Group(g), name)),
                    Err(_) => error.set("The group was created, but could not be opened.".into()),
                },
                Ok(_) => error.set("The group could not be created. Try again.".into()),
                Err(err) => error.set(err.message),
            }
        });
    };
    view! {
        <section class="new-group" aria-labelledby="new-group-title" data-testid="new-group-form">
            <header class="conversation-head">
                <button class="icon-button back" aria-label="Back to chats" on:click=move |_| on_cancel.run(())>"←"</button>
                <h2 id="new-group-title">"New group"</h2>
            </header>
            <form class="panel-form" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); create(); }>
                <label for="group-title-input">"Group name"</label>
                <input
                    id="group-title-input"
                    data-testid="group-title-input"
                    maxlength="100"
                    autocomplete="off"
                    prop:value=move || title.get()
                    on:input=move |ev| title.set(event_target_value(&ev))
                />
                <label for="group-members-input">"People (their Tandem names, separated by commas)"</label>
                <input
                    id="group-members-input"
                    data-testid="group-members-input"
                    placeholder="bob, carol"
                    autocomplete="off"
                    spellcheck="false"
                    prop:value=move || members.get()
                    on:input=move |ev| members.set(event_target_value(&ev))
                />
                <Show when=move || !contacts.with(Vec::is_empty)>
                    <div class="pick-list" role="group" aria-label="People you chat with">
                        <span class="muted small">"From your chats:"</span>
                        <For each=move || contacts.get() key=|h| h.clone() let:h>
                            {
                                let (label, name) = (h.clone(), h.clone());
                                view! {
                                    <button
                                        type="button"
                                        class="pill pick"
                                        data-testid="pick-contact"
                                        aria-pressed=move || picked(&label).to_string()
                                        on:click=move |_| toggle(name.clone())
                                    >{h}</button>
                                }
                            }
                        </For>
                    </div>
                </Show>
                <p class="muted small">
                    "People who have not written with you yet see an invitation, and join only if they accept."
                </p>
                <div class="form-actions">
                    <button class="button button-quiet" type="button" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                    <button class="button button-primary" type="submit" data-testid="create-group" disabled=move || busy.get()>
                        "Create group"
                    </button>
                </div>
                <p class="muted small" role="status" aria-live="polite" data-testid="group-progress">{move || progress.get()}</p>
                <super::progress::WorkLine/>
                <p class="error small" role="alert" data-testid="group-error">{move || error.get()}</p>
            </form>
        </section>
    }
}

/// The invitation to a group this account has not joined: join or decline.
#[component]
pub(crate) fn GroupInvitation(
    engine: StoredValue<SendWrapper<Device>>,
    group: [u8; 16],
    /// Who invited (the signer of the state that added this account).
    inviter: String,
    on_declined: Callback<()>,
) -> impl IntoView {
    let busy = RwSignal::new(false);
    let error = RwSignal::new(String::new());
    let answer = move |accept: bool| {
        busy.set(true);
        error.set(String::new());
        let e = engine.get_value();
        spawn_local(async move {
            let result = e.run(Command::AcceptGroup { group: group.to_vec(), accept }).await;
            busy.set(false);
            match result {
                Ok(_) if !accept => on_declined.run(()),
                Ok(_) => {}
                Err(err) => error.set(err.message),
            }
        });
    };
    view! {
        <div class="invitation" role="region" aria-label="Group invitation" data-testid="group-invitation">
            <p>
                <strong>{inviter}</strong>
                " added you to this group. Messages reach you only once you join."
            </p>
            <div class="form-actions">
                <button class="button button-quiet" data-testid="decline-group" disabled=move || busy.get() on:click=move |_| answer(false)>"Decline"</button>
                <button class="button button-primary" data-testid="join-group" disabled=move || busy.get() on:click=move |_| answer(true)>"Join"</button>
            </div>
            <p class="error small" role="alert">{move || error.get()}</p>
        </div>
    }
}
