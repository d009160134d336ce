#![no_main]

use libfuzzer_sys::fuzz_target;
use runway_webhook::{WebhookSecrets, parse_workflow_job};

fuzz_target!(|data: &[u8]| {
    // The parser must refuse or accept any bytes without panicking...
    if let Ok(event) = parse_workflow_job(data) {
        let _ = event.owner_login();
    }
    // ...and no bytes verify as a signature without the secret.
    let secrets = WebhookSecrets::new("fuzz-secret").unwrap();
    let (header, body) = data.split_at(data.len().min(71));
    assert!(secrets.verify(Some(header), body).is_err() || header == secrets.sign(body).as_bytes());
});
