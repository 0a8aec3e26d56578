mod common;

use common::*;
use galley_domain::Action;

async fn create_and_read_back(db: &TestDb) {
    let cast = Cast::default();
    let id = new_id();
    let out = run(
        &db.store,
        command(
            id,
            0,
            &cast.editor,
            Action::CreateArticle {
                content: seed_draft(),
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(out.events.len(), 1);
    let back = db.store.read_all(0, 10, &Default::default()).await.unwrap();
    assert_eq!(back, out.events);
    let a = db.store.article(id).await.unwrap().unwrap();
    assert_eq!(a, out.article);
    assert_eq!(db.store.head().await.unwrap(), 1);
}

contract_tests!(create_and_read_back);
