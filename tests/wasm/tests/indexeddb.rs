//! The browser store on real IndexedDB: write, read, reopen, update, delete.
#![cfg(target_family = "wasm")]

use tandem_web::store::{BrowserDb, DeviceRecord};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn unique_name(tag: &str) -> String {
    format!("tandem-test-{tag}-{}", hex(&tandem_web::rng::random_bytes::<6>()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn record(id: &str) -> DeviceRecord {
    DeviceRecord {
        key: String::new(),
        id: id.into(),
        created_at_ms: 1_700_000_000_000.0,
        name: "Test".into(),
        passkey: None,
    }
}

#[wasm_bindgen_test]
async fn test_device_record_survives_reopen() {
    let name = unique_name("device");
    let db = BrowserDb::open(&name).await.unwrap();
    assert_eq!(db.load_device().await.unwrap(), None);
    let (created, fresh) = db.load_or_create_device(|| record("aaaa")).await.unwrap();
    assert!(fresh);
    assert_eq!(created.key, "self");
    let (again, fresh) = db.load_or_create_device(|| record("bbbb")).await.unwrap();
    assert!(!fresh, "an existing record is never replaced");
    assert_eq!(again.id, "aaaa");
    db.close();

    let reopened = BrowserDb::open(&name).await.unwrap();
    let loaded = reopened.load_device().await.unwrap().expect("record persisted");
    assert_eq!(loaded, created);
    let renamed = DeviceRecord { name: "Work laptop".into(), ..loaded };
    reopened.save_device(&renamed).await.unwrap();
    reopened.close();

    let third = BrowserDb::open(&name).await.unwrap();
    assert_eq!(third.load_device().await.unwrap().unwrap().name, "Work laptop");
    third.close();
    BrowserDb::delete(&name).await.unwrap();
    let empty = BrowserDb::open(&name).await.unwrap();
    assert_eq!(empty.load_device().await.unwrap(), None, "delete removed everything");
    empty.close();
    BrowserDb::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn test_concurrent_creation_agrees_on_one_record() {
    let name = unique_name("race");
    let a = BrowserDb::open(&name).await.unwrap();
    let b = BrowserDb::open(&name).await.unwrap();
    let (ra, rb) = futures_util::future::join(
        a.load_or_create_device(|| record("from-a")),
        b.load_or_create_device(|| record("from-b")),
    )
    .await;
    let (ra, ca) = ra.unwrap();
    let (rb, cb) = rb.unwrap();
    assert_eq!(ra.id, rb.id, "both connections see the same record");
    assert!(ca ^ cb, "exactly one of them created it");
    a.close();
    b.close();
    BrowserDb::delete(&name).await.unwrap();
}
