//! Graceful shutdown, as SIGTERM triggers it: a mutation in flight when shutdown begins still
//! commits and gets its answer, subscriptions are completed and their sockets closed with
//! 1001, and what was committed is there when the next server starts on the database.

use std::sync::Arc;

use futures::FutureExt;
use galley_domain::Role;
use galley_storage::CommitDecision;
use galley_tests::{
    add_user, on_both_backends, short_article, start, Backend, Client, Newsroom, Ws,
};
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};

on_both_backends!(shutdown_lets_an_in_flight_mutation_finish_and_closes_subscriptions_cleanly);

async fn shutdown_lets_an_in_flight_mutation_finish_and_closes_subscriptions_cleanly(
    backend: Backend,
) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let mut ws = Ws::init(&server, &staff.viewer.user().token).await;
    ws.subscribe(
        "feed",
        "subscription { events(after: 0) { position type } }",
        json!({}),
    )
    .await;

    // Every commit from now on waits, just before it commits, until the test releases it.
    let (entered_tx, mut entered) = mpsc::unbounded_channel::<()>();
    let release = Arc::new(Semaphore::new(0));
    let gate = release.clone();
    server
        .store()
        .set_before_commit_hook(Some(Arc::new(move |_events| {
            let entered_tx = entered_tx.clone();
            let gate = gate.clone();
            async move {
                let _ = entered_tx.send(());
                let _permit = gate.acquire().await;
                CommitDecision::Commit
            }
            .boxed()
        })));

    // A mutation is in flight, held at its commit.
    let editor = staff.editor.clone();
    let in_flight = tokio::spawn(async move {
        editor
            .post(
                "mutation($c: ContentInput!) { createArticle(content: $c) { article { id version } events { position } } }",
                json!({ "c": short_article("Filed at closing time") }),
            )
            .await
    });
    tokio::time::timeout(galley_tests::GUARD, entered.recv())
        .await
        .expect("the mutation reaches its commit")
        .unwrap();

    // Shutdown begins: the subscriber is told its subscription is complete, then the socket
    // closes with 1001 (going away), while the mutation still waits.
    let shutdown = tokio::spawn(server.shutdown());
    assert_eq!(
        ws.recv().await,
        Ok(json!({ "type": "complete", "id": "feed" }))
    );
    assert_eq!(ws.recv().await, Err(1001));
    assert!(!in_flight.is_finished());

    // Released, the mutation commits and answers; then the server finishes stopping.
    release.add_permits(1);
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let payload = &reply.body["data"]["createArticle"];
    assert_eq!(payload["article"]["version"], 1, "{}", reply.body);
    assert_eq!(payload["events"][0]["position"], 1);
    let id = payload["article"]["id"].as_str().unwrap().to_owned();
    tokio::time::timeout(galley_tests::GUARD, shutdown)
        .await
        .expect("shutdown completes")
        .unwrap()
        .unwrap();

    // The next server on the same database has it.
    let next = start(&backend).await;
    let night_desk = Client::new(
        &next,
        Some(add_user(&next, "night desk", &[Role::Viewer]).await),
    );
    assert_eq!(night_desk.article(&id).await["version"], 1);
    assert_eq!(night_desk.head().await, 1);
    next.shutdown().await.unwrap();
    backend.cleanup().await;
}
