//! Names of the people a screen lists, learned from the engine once each.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use tandem_core::AccountId;

use crate::device::Device;

/// Reads the names of `wanted` that `names` lacks (each once, in the background) into it.
pub(super) fn learn(
    engine: StoredValue<SendWrapper<Device>>,
    names: RwSignal<HashMap<AccountId, String>>,
    mut wanted: Vec<AccountId>,
) {
    wanted.sort_unstable();
    wanted.dedup();
    wanted.retain(|a| !names.with_untracked(|n| n.contains_key(a)));
    if wanted.is_empty() {
        return;
    }
    let e = engine.get_value();
    spawn_local(async move {
        for a in wanted {
            let name = e.name_of(a).await;
            names.update(|n| {
                n.insert(a, name);
            });
        }
    });
}
