//! `MemoryStore`, the reference protocol store, passes the protocol store conformance suite.

use tandem_signal::IdentityKeyPair;
use tandem_signal::store::MemoryStore;

async fn make_memory_store(identity: IdentityKeyPair, registration_id: u32) -> MemoryStore {
    MemoryStore::new(identity, registration_id)
}

tandem_signal::protocol_store_conformance_tests!(tokio::test, make_memory_store);
