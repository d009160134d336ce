//! The `state` that travels through GitHub and back (GitHub's manifest flow's CSRF guard):
//! a random nonce and the API the code is to be converted at, with an HMAC keyed by the
//! setup token. Only someone who holds the token can make one, so a callback whose state
//! verifies was started from runway's own setup page; the API URL inside it cannot be
//! changed on the way (the conversion is never sent elsewhere).
//!
//! The same form, with no API URL, is the setup page's ticket for its own form: the page
//! never carries the token itself.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

const DOMAIN: &[u8] = b"runway-setup-state/1\n";

/// A verified state: what its holder may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub nonce: String,
    /// Empty in the setup page's ticket.
    pub api_url: String,
}

fn mac(token: &str, nonce: &str, api_hex: &str) -> Option<Hmac<Sha256>> {
    // HMAC takes keys of any length: this never fails.
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).ok()?;
    mac.update(DOMAIN);
    mac.update(nonce.as_bytes());
    mac.update(b".");
    mac.update(api_hex.as_bytes());
    Some(mac)
}

/// A new state for `api_url` (empty: the page's ticket), bound to `token`.
pub fn issue(token: &str, api_url: &str) -> String {
    let nonce: [u8; 16] = rand::rng().random();
    sign(token, &hex::encode(nonce), api_url)
}

fn sign(token: &str, nonce: &str, api_url: &str) -> String {
    let api_hex = hex::encode(api_url);
    let tag = mac(token, nonce, &api_hex)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default();
    format!("{nonce}.{api_hex}.{tag}")
}

/// The state `text` says, when `token` made it; `None` for anything else.
pub fn verify(token: &str, text: &str) -> Option<State> {
    let mut parts = text.trim().split('.');
    let (Some(nonce), Some(api_hex), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let tag = hex::decode(tag).ok()?;
    // Constant time: a guess learns nothing from how long the check took.
    mac(token, nonce, api_hex)?.verify_slice(&tag).ok()?;
    let api_url = String::from_utf8(hex::decode(api_hex).ok()?).ok()?;
    Some(State {
        nonce: nonce.to_owned(),
        api_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_state_verifies_with_its_token_only() {
        let state = issue("token-1", "https://api.github.com");
        let read = verify("token-1", &state).unwrap();
        assert_eq!(read.api_url, "https://api.github.com");
        assert_eq!(verify("token-2", &state), None);
        // Another API inside, same tag: refused.
        let mut parts: Vec<String> = state.split('.').map(str::to_owned).collect();
        parts[1] = hex::encode("https://evil.example");
        assert_eq!(verify("token-1", &parts.join(".")), None);
        assert_ne!(issue("t", ""), issue("t", ""), "random nonces");
        assert!(!state.contains("token-1"));
    }

    proptest! {
        /// Whatever comes back as `state`, it parses without panicking, and only what the
        /// token signed verifies.
        #[test]
        fn only_signed_states_verify(text in ".{0,200}", token in "[A-Za-z0-9]{8,40}") {
            prop_assert_eq!(verify(&token, &text), None);
        }

        #[test]
        fn signed_states_round_trip(api in "https://[a-z.]{1,30}(/api/v3)?", token in "[A-Za-z0-9]{8,40}") {
            let state = issue(&token, &api);
            prop_assert_eq!(verify(&token, &state).map(|s| s.api_url), Some(api));
        }
    }
}
