//! CORS for browser clients on other origins: off unless origins are configured.
//!
//! Only the listed origins are allowed (never `*`, since requests carry a bearer token), for
//! GET and POST with the headers the API reads. Credentials (cookies) are not allowed: the
//! API authenticates with the Authorization header only. A preflight is answered by the layer
//! before authentication, rate limiting or any handler.

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::REQUEST_ID_HEADER;

/// How long a browser may cache a preflight answer.
const MAX_AGE: Duration = Duration::from_secs(600);

/// Wraps `app` in the CORS layer when `origins` is not empty. Origins that are not valid
/// header values are skipped with a warning (the configuration checks them first).
pub(crate) fn layer(app: Router, origins: &[String]) -> Router {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| match HeaderValue::from_str(o.trim()) {
            Ok(v) => Some(v),
            Err(_) => {
                tracing::warn!(origin = %o, "ignoring an unusable CORS origin");
                None
            }
        })
        .collect();
    if allowed.is_empty() {
        return app;
    }
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    app.layer(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(allowed))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                request_id.clone(),
            ])
            .expose_headers([request_id, header::RETRY_AFTER])
            .max_age(MAX_AGE),
    )
}
