//! The GraphiQL IDE page (when enabled), from async-graphql's GraphiQL source. The page is
//! HTML only: its scripts and styles load from a public CDN (unpkg.com) in the browser, and it
//! talks to /graphql and /graphql/ws like any client, with the token the user enters in its
//! headers pane.

use axum::response::{Html, IntoResponse};

/// `GET /graphiql`.
pub(crate) async fn graphiql() -> impl IntoResponse {
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("Galley GraphiQL")
            .finish(),
    )
}
