//! `MemoryStore`, the reference implementation, passes the store conformance suite.

use tandem_core::IdentityKeyPair;
use tandem_core::store::MemoryStore;

async fn make_memory_store(identity: IdentityKeyPair, registration_id: u32) -> MemoryStore {
    MemoryStore::new(identity, registration_id)
}

tandem_core::store_conformance_tests!(tokio::test, make_memory_store);
