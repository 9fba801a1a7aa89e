//! `tandem-core`'s store conformance suite on the IndexedDB store, in headless Chromium:
//! every test gets a fresh database.
#![cfg(target_family = "wasm")]

use tandem_core::IdentityKeyPair;
use tandem_web::store::IdbStore;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn make_idb_store(identity: IdentityKeyPair, registration_id: u32) -> IdbStore {
    let tag: String =
        tandem_web::rng::random_bytes::<6>().iter().map(|b| format!("{b:02x}")).collect();
    IdbStore::create(&format!("tandem-conformance-{tag}"), identity, registration_id)
        .await
        .expect("open a fresh IndexedDB store")
}

tandem_core::store_conformance_tests!(wasm_bindgen_test, make_idb_store);

/// The identity survives closing and reopening the database, and the state saved with it.
#[wasm_bindgen_test]
async fn test_identity_and_account_survive_reopen() {
    use tandem_core::store::{ClientStore, IdentityKeyStore};
    let tag: String =
        tandem_web::rng::random_bytes::<6>().iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("tandem-reopen-{tag}");
    assert!(IdbStore::open(&name).await.unwrap().is_none());
    let identity = IdentityKeyPair::generate(&mut tandem_web::rng::system_rng());
    let store = IdbStore::create(&name, identity.clone(), 4242).await.unwrap();
    store.close();
    let store = IdbStore::open(&name).await.unwrap().expect("identity kept");
    assert_eq!(
        store.load_identity_key_pair().await.unwrap().identity_key(),
        identity.identity_key()
    );
    assert_eq!(store.load_local_registration_id().await.unwrap(), 4242);
    assert!(store.load_account().await.unwrap().is_none());
}
