//! Linking a companion through the real relay's provisioning mailbox: a lost registration
//! answer, a tampered link message and a fifth companion each leave the account's devices
//! exactly as they should be.

mod support;

use support::TestServer;
use tandem_cli::{Connection, Device, Pushes, now, system_rng};
use tandem_core::client::{Client, ClientError};
use tandem_core::link::{LinkCode, LinkError, LinkRequest};
use tandem_core::prekeys::generate_registration_id;
use tandem_core::store::MemoryStore;
use tandem_core::transport::RelayTransport;
use tandem_core::wire::relay::{
    OpenProvisioning, Push, SendProvisioning, Status, push, request, response,
};
use tandem_core::{IdentityKeyPair, Timestamp};
use tandem_server::Storage;

/// A companion waiting at a provisioning address, with its code.
async fn waiting(url: &str, identity: &IdentityKeyPair) -> (Connection, Pushes, LinkRequest) {
    let (conn, pushes) = Connection::connect(url).await.unwrap();
    let r = conn.request(request::Body::OpenProvisioning(OpenProvisioning {})).await.unwrap();
    let Some(response::Body::ProvisioningAddress(a)) = r.body else { panic!("address") };
    let expires = Timestamp::from_millis(now().as_millis() + 60_000);
    let request = LinkRequest::new(
        a.address.as_slice().try_into().unwrap(),
        *identity.identity_key(),
        expires,
        "test laptop",
        &mut system_rng(),
    );
    (conn, pushes, request)
}

async fn link_message(pushes: &mut Pushes) -> Vec<u8> {
    loop {
        match pushes.recv().await {
            Some(Push { body: Some(push::Body::Provisioning(p)), .. }) => return p.message,
            Some(_) => {}
            None => panic!("socket closed"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_repeated_registration_after_a_lost_answer_gets_the_same_device() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let account = alice.account_id().await;
    let mut rng = system_rng();
    let identity = IdentityKeyPair::generate(&mut rng);
    let registration_id = generate_registration_id(&mut rng);
    let (conn, mut pushes, request) = waiting(&server.url, &identity).await;
    let code = LinkCode::parse(&request.code().to_text()).unwrap();
    alice.client.link_companion(alice.connection(), &code, "phone", now(), &mut rng).await.unwrap();
    let (link, _) = request.open(&link_message(&mut pushes).await).unwrap();
    // An identity registering with `link` on `conn`: its proof is its signature.
    let register = |conn: Connection, identity: IdentityKeyPair| {
        let (link, store) = (link.clone(), MemoryStore::new(identity, registration_id));
        async move {
            let client = Client::register_linked(
                store,
                &conn,
                link,
                "laptop",
                "cli",
                now(),
                &mut system_rng(),
            )
            .await?;
            Ok::<_, ClientError>(client.whoami().await)
        }
    };
    let first = register(conn, identity.clone()).await.unwrap();
    // The answer "was lost": the companion repeats the registration on a new socket.
    let (again, _pushes) = Connection::connect(&server.url).await.unwrap();
    let second = register(again, identity.clone()).await.unwrap();
    assert_eq!(first, second, "the same device");
    // Someone else holding the link message but not the identity key gets nothing.
    let (other, _pushes) = Connection::connect(&server.url).await.unwrap();
    let stolen = register(other, IdentityKeyPair::generate(&mut rng)).await;
    assert!(stolen.is_err(), "{stolen:?}");
    assert_eq!(server.state.storage.devices(account).await.unwrap().len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_tampered_link_message_is_refused_and_links_nothing() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let account = alice.account_id().await;
    let identity = IdentityKeyPair::generate(&mut system_rng());
    let (_conn, mut pushes, request) = waiting(&server.url, &identity).await;
    // A primary (or anyone who got hold of the address) sends bytes not sealed to the code.
    let r = alice
        .connection()
        .request(request::Body::SendProvisioning(SendProvisioning {
            address: request.code().address.to_vec(),
            message: vec![1; 200],
        }))
        .await
        .unwrap();
    assert_eq!(r.status(), Status::Ok);
    let sealed = link_message(&mut pushes).await;
    assert_eq!(request.open(&sealed).unwrap_err(), LinkError::Tampered);
    assert_eq!(server.state.storage.devices(account).await.unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_fifth_companion_is_refused_before_anything_is_sent() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut companions = Vec::new();
    for i in 0..4 {
        companions.push(Device::link(&alice, &format!("companion {i}")).await.unwrap());
    }
    let identity = IdentityKeyPair::generate(&mut system_rng());
    let (_conn, _pushes, request) = waiting(&server.url, &identity).await;
    let code = LinkCode::parse(&request.code().to_text()).unwrap();
    let refused = alice
        .client
        .link_companion(alice.connection(), &code, "phone", now(), &mut system_rng())
        .await;
    assert!(
        matches!(refused, Err(ClientError::Server { status: Status::LimitReached, .. })),
        "{refused:?}"
    );
    assert_eq!(server.state.storage.devices(alice.account_id().await).await.unwrap().len(), 5);
    server.stop().await;
}
