//! The ICE servers for calls: STUN as configured, TURN with credentials that expire.

use base64ct::{Base64, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use tandem_core::wire::relay::{IceServer, IceServers, MAX_ICE_SERVERS, response};

use super::{ApiResult, Authed};
use crate::AppState;
use crate::config::IceConfig;
use crate::storage::Storage;

/// The ICE servers for device `who` at `now_ms`.
pub async fn ice_servers<D: Storage>(state: &AppState<D>, who: Authed) -> ApiResult {
    Ok(Some(response::Body::IceServers(servers(&state.relay.ice, &who, crate::now_ms()))))
}

/// The coturn "REST API" credential: base64(HMAC-SHA1(secret, user)).
fn turn_credential(secret: &str, user: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(user.as_bytes());
    Base64::encode_string(&mac.finalize().into_bytes())
}

fn servers(ice: &IceConfig, who: &Authed, now_ms: u64) -> IceServers {
    let mut servers = Vec::new();
    if !ice.stun.is_empty() {
        servers.push(IceServer { urls: ice.stun.clone(), ..IceServer::default() });
    }
    let mut expires_ms = 0;
    if let (false, Some(secret)) = (ice.turn.is_empty(), &ice.turn_secret) {
        let expiry = now_ms / 1000 + ice.turn_ttl.as_secs();
        // The account (not the device) names the user: TURN quotas are per person.
        let user = format!("{expiry}:{}", hex::encode(who.account.0));
        let credential = turn_credential(secret, &user);
        servers.push(IceServer { urls: ice.turn.clone(), username: user, credential });
        expires_ms = expiry * 1000;
    }
    servers.truncate(MAX_ICE_SERVERS);
    IceServers { servers, expires_ms }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tandem_core::AccountId;

    use super::*;

    #[test]
    fn test_turn_credentials_are_coturns_rest_api_credentials() {
        // Computed independently (Python: base64(hmac.new(b"north", user, sha1).digest())).
        assert_eq!(
            turn_credential("north", "1328402880:mbzrxpgjys"),
            "6FX6IrZD9LKkA68VW7uVM+4jcj8="
        );
        let ice = IceConfig {
            stun: vec!["stun:turn.example.org:3478".into()],
            turn: vec!["turn:turn.example.org:3478?transport=udp".into()],
            turn_secret: Some("north".into()),
            turn_ttl: Duration::from_secs(3600),
        };
        let who = Authed { account: AccountId([0xab; 16]), device: 2 };
        let s = servers(&ice, &who, 1_800_000_000_000);
        assert_eq!(s.servers.len(), 2);
        assert_eq!(s.servers[0].urls, ice.stun);
        assert!(s.servers[0].username.is_empty() && s.servers[0].credential.is_empty());
        let user = format!("1800003600:{}", "ab".repeat(16));
        assert_eq!(s.servers[1].username, user);
        assert_eq!(s.servers[1].credential, turn_credential("north", &user));
        assert_eq!(s.expires_ms, 1_800_003_600_000);
        // Without a secret, no TURN (and no credential made up).
        let none = servers(&IceConfig { turn_secret: None, ..ice }, &who, 0);
        assert_eq!(none.servers.len(), 1);
        assert_eq!(none.expires_ms, 0);
    }
}
