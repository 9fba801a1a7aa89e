//! Long work the engine reports while a person waits (a group's key going out to hundreds
//! of people): a sentence and a bar, announced politely to screen readers.

use leptos::prelude::*;

use crate::device::engine::WorkProgress;

/// The engine's long work under way, if any (set from `Notice::Progress`).
#[derive(Clone, Copy)]
pub(crate) struct WorkContext(pub(crate) RwSignal<Option<WorkProgress>>);

/// "Sending the group's key: 120 of 256 people…", with a bar; nothing when no long work
/// runs.
#[component]
pub(crate) fn WorkLine() -> impl IntoView {
    let work = use_context::<WorkContext>().map(|w| w.0);
    let current = move || work.and_then(|w| w.get());
    view! {
        <Show when=move || current().is_some()>
            <p class="work-line small" role="status" aria-live="polite" data-testid="work-progress">
                {move || current().map(|p| view! {
                    <span>{format!("{}: {} of {} people…", p.what, p.done, p.total)}</span>
                    <progress max=p.total.to_string() value=p.done.to_string()></progress>
                })}
            </p>
        </Show>
    }
}
