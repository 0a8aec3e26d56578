//! Signatures as the Standard Webhooks specification writes them, so that receivers can check
//! a delivery with that specification's libraries.
//!
//! A secret is `whsec_` followed by the base64 of 32 random bytes; the signing key is those
//! bytes. A delivery carries `webhook-id` (the same on every attempt of one delivery),
//! `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature`: `v1,` and the
//! base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`. While a rotated-out secret is still
//! valid, a second signature made with it follows, separated by a space, and a receiver
//! accepts the delivery when any signature verifies with the secret it knows.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use galley_storage::WebhookEndpointId;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What every secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// A fresh secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The signing key of a secret: the bytes its base64 part decodes to.
fn key(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .ok()
}

/// One signature: `v1,` + base64 of HMAC-SHA256(key, `{id}.{timestamp}.{body}`). `None` for a
/// secret that is not base64 (never one this crate made).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)?).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header: the current secret's signature, then the previous
/// secret's while it is still valid.
pub fn signature_header(
    current: &str,
    previous: Option<&str>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<String> {
    let mut header = sign(current, id, timestamp, body)?;
    if let Some(signature) = previous.and_then(|p| sign(p, id, timestamp, body)) {
        header.push(' ');
        header.push_str(&signature);
    }
    Some(header)
}

/// The `webhook-id` of the delivery of one event to one endpoint: the same on every attempt,
/// redelivery and replay, different for another endpoint, so a receiver drops duplicates by
/// it.
pub fn webhook_id(endpoint: WebhookEndpointId, event_id: Uuid) -> String {
    let digest = Sha256::new()
        .chain_update(endpoint.as_uuid().as_bytes())
        .chain_update(event_id.as_bytes())
        .finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_secret_is_whsec_and_32_random_bytes() {
        let a = new_secret();
        let b = new_secret();
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(key(&a).unwrap().len(), 32);
        assert_ne!(a, b);
    }

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn the_signature_is_the_specifications() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let signature = sign(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_rotated_secret_signs_beside_the_new_one() {
        let (old, new) = (new_secret(), new_secret());
        let header = signature_header(&new, Some(&old), "msg_1", 1, b"{}").unwrap();
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(Some(parts[0].to_owned()), sign(&new, "msg_1", 1, b"{}"));
        assert_eq!(Some(parts[1].to_owned()), sign(&old, "msg_1", 1, b"{}"));
        assert_eq!(
            signature_header(&new, None, "msg_1", 1, b"{}"),
            sign(&new, "msg_1", 1, b"{}")
        );
    }

    #[test]
    fn the_webhook_id_is_stable_per_endpoint_and_event() {
        let endpoint = WebhookEndpointId::from_uuid(Uuid::from_u128(7));
        let other = WebhookEndpointId::from_uuid(Uuid::from_u128(8));
        let event = Uuid::from_u128(42);
        assert_eq!(webhook_id(endpoint, event), webhook_id(endpoint, event));
        assert_ne!(webhook_id(endpoint, event), webhook_id(other, event));
        assert!(webhook_id(endpoint, event).starts_with("msg_"));
    }
}

#[cfg(test)]
mod cross_check {
    use super::*;

    /// The specification's own Rust library (a different HMAC and SHA-256 implementation)
    /// accepts what this module signs, and refuses it under another secret.
    #[test]
    fn the_reference_library_verifies_a_signature_made_here() {
        let secret = new_secret();
        let body = br#"{"type":"ArticlePublished"}"#;
        let timestamp = chrono::Utc::now().timestamp();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
        let signature = signature_header(&secret, None, "msg_1", timestamp, body).unwrap();
        headers.insert("webhook-signature", signature.parse().unwrap());
        let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
        assert!(verifier.verify(body, &headers).is_ok());
        let stranger = standardwebhooks::Webhook::new(&new_secret()).unwrap();
        assert!(stranger.verify(body, &headers).is_err());
    }
}
