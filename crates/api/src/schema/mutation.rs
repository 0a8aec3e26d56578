//! The write side: one mutation per domain command. Each names the version it expects, may
//! carry an idempotency key, and returns the article and the events it appended.

use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use galley_domain::{Action, ArticleId, Command, CommentId, RevisionNumber, UserId, Version};
use galley_storage::{Metadata, UserChange};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::schema::args::{check_time, parse_id};
use crate::schema::article::{Article, Event};
use crate::schema::context::ContextExt;
use crate::schema::enums::GqlRole;
use crate::schema::inputs::ContentInput;
use crate::schema::users::{self, User};

/// Longest idempotency key accepted.
const IDEMPOTENCY_KEY_MAX: usize = 200;

/// The result of a mutation: the article after the command and the events it appended.
#[derive(SimpleObject, Debug)]
pub struct ArticlePayload {
    /// The article after the command.
    pub article: Article,
    /// The events the command appended, in order (for a replayed idempotent retry, the events
    /// the original command appended).
    pub events: Vec<Event>,
    /// Whether this is a replay of an earlier command with the same idempotency key.
    pub replayed: bool,
}

/// The root of every write.
#[derive(Debug, Default)]
pub struct Mutation;

/// Runs one command through the store and shapes the payload.
async fn execute(
    ctx: &Context<'_>,
    article_id: ArticleId,
    expected_version: Version,
    action: Action,
    idempotency_key: Option<String>,
) -> ApiResult<ArticlePayload> {
    let principal = ctx.principal()?;
    if let Some(key) = &idempotency_key {
        if key.is_empty() || key.len() > IDEMPOTENCY_KEY_MAX {
            return Err(ApiError::validation(
                "idempotencyKey",
                format!("must be 1 to {IDEMPOTENCY_KEY_MAX} bytes"),
            ));
        }
    }
    let name = action.name();
    let command = Command {
        article_id,
        expected_version,
        actor: principal.actor(),
        now: Utc::now(),
        action,
    };
    let metadata = Metadata {
        correlation_id: Some(Uuid::now_v7()),
        causation_id: None,
        request_id: ctx.request_id().map(str::to_owned),
    };
    let result = ctx
        .store()
        .execute(command, metadata, idempotency_key)
        .await
        .map_err(ApiError::from);
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code().as_str(),
    };
    metrics::counter!("galley_commands_total", "command" => name, "outcome" => outcome)
        .increment(1);
    let outcome = result?;
    if !outcome.replayed {
        metrics::counter!("galley_events_appended_total").increment(outcome.events.len() as u64);
    }
    Ok(ArticlePayload {
        article: Article::from(outcome.article),
        events: outcome.events.into_iter().map(Event::from).collect(),
        replayed: outcome.replayed,
    })
}

/// The id of something a command creates (an article, a comment): a fresh UUIDv7, also when the
/// command carries an idempotency key. The store leaves created ids out of a command's
/// fingerprint, so a retry with a new id is still the same command and gets the original
/// outcome, with the original id, back.
fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Runs a command on an existing article named by a GraphQL id.
async fn on_article(
    ctx: &Context<'_>,
    article_id: &ID,
    expected_version: u64,
    action: Action,
    idempotency_key: Option<String>,
) -> ApiResult<ArticlePayload> {
    let id = self::article_id(article_id)?;
    execute(ctx, id, Version(expected_version), action, idempotency_key).await
}

fn article_id(id: &ID) -> ApiResult<ArticleId> {
    parse_id("articleId", id)
}

// The arguments most mutations share (`articleId`, `expectedVersion`, `idempotencyKey`,
// `userId`, `content`) repeat their descriptions: async-graphql 7 takes an argument's `desc`
// only as a string literal. A test in `schema` holds each to one text.
/// Every change: each mutation is one domain command that appends events to the log, names
/// the version it expects, and may carry an idempotency key. (Merged with the webhook changes
/// into the schema's `Mutation`.)
#[Object(name = "ArticleMutation")]
impl Mutation {
    /// Creates an article with its first revision (EDITOR).
    async fn create_article(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The article's content: headline, standfirst, body (Markdown), tags, category and language."
        )]
        content: ContentInput,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        let action = Action::CreateArticle {
            content: content.into(),
        };
        let id = ArticleId::from_uuid(new_id());
        Ok(execute(ctx, id, Version::NONE, action, idempotency_key).await?)
    }

    /// Writes a new revision of the working copy (EDITOR). Revising an approved article
    /// invalidates the approval; revising a scheduled one cancels the schedule.
    async fn revise_draft(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(
            desc = "The article's content: headline, standfirst, body (Markdown), tags, category and language."
        )]
        content: ContentInput,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        let action = Action::ReviseDraft {
            content: content.into(),
        };
        Ok(on_article(ctx, &article_id, expected_version, action, idempotency_key).await?)
    }

    /// Submits the current revision for review (EDITOR).
    async fn submit_for_review(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        Ok(on_article(
            ctx,
            &article_id,
            expected_version,
            Action::SubmitForReview,
            idempotency_key,
        )
        .await?)
    }

    /// Takes a submission back (EDITOR).
    async fn withdraw_submission(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        Ok(on_article(
            ctx,
            &article_id,
            expected_version,
            Action::WithdrawSubmission,
            idempotency_key,
        )
        .await?)
    }

    /// Assigns a reviewer (EDITOR or REVIEWER).
    async fn assign_reviewer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(desc = "The user who is to review; they must hold the reviewer role.")]
        reviewer_id: ID,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        let reviewer: UserId = parse_id("reviewerId", &reviewer_id)?;
        Ok(on_article(
            ctx,
            &article_id,
            expected_version,
            Action::AssignReviewer { reviewer },
            idempotency_key,
        )
        .await?)
    }

    /// Replaces a user's roles (ADMIN). Recorded as a UserRolesChanged change.
    async fn set_user_roles(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] user_id: ID,
        #[graphql(desc = "The user's roles from now on (replacing the current ones).")] roles: Vec<
            GqlRole,
        >,
    ) -> async_graphql::Result<User> {
        let roles = roles.into_iter().map(Into::into).collect();
        let change = UserChange::UserRolesChanged { roles };
        Ok(users::change_user(ctx, "setUserRoles", &user_id, change).await?)
    }

    /// Renames a user (ADMIN); the name must be free. Recorded as a UserRenamed change.
    async fn rename_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] user_id: ID,
        #[graphql(desc = "The new name, unique among users.")] name: String,
    ) -> async_graphql::Result<User> {
        if name.len() > 4 * galley_storage::USER_NAME_MAX_CHARS {
            return Err(ApiError::validation("name", "is too long").into());
        }
        let change = UserChange::UserRenamed { name };
        Ok(users::change_user(ctx, "renameUser", &user_id, change).await?)
    }

    /// Disables a user (ADMIN): their tokens stop working at once; their history stays
    /// attributed to them. Recorded as a UserDisabled change.
    async fn disable_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] user_id: ID,
    ) -> async_graphql::Result<User> {
        let change = UserChange::UserDisabled {};
        Ok(users::change_user(ctx, "disableUser", &user_id, change).await?)
    }

    /// Enables a disabled user again (ADMIN). Recorded as a UserEnabled change.
    async fn enable_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] user_id: ID,
    ) -> async_graphql::Result<User> {
        let change = UserChange::UserEnabled {};
        Ok(users::change_user(ctx, "enableUser", &user_id, change).await?)
    }

    /// Takes an assigned reviewer off the article (EDITOR or REVIEWER).
    async fn unassign_reviewer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(desc = "The assigned reviewer to take off the article.")] reviewer_id: ID,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        let reviewer: UserId = parse_id("reviewerId", &reviewer_id)?;
        Ok(on_article(
            ctx,
            &article_id,
            expected_version,
            Action::UnassignReviewer { reviewer },
            idempotency_key,
        )
        .await?)
    }

    /// Attaches a review comment to a revision (REVIEWER or EDITOR).
    async fn add_review_comment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(desc = "The revision the comment is about.")] revision: u32,
        #[graphql(desc = "The comment's text.")] body: String,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        let action = Action::AddReviewComment {
            comment_id: CommentId::from_uuid(new_id()),
            revision: RevisionNumber(revision),
            body,
        };
        Ok(on_article(ctx, &article_id, expected_version, action, idempotency_key).await?)
    }

    /// Sends the revision under review back, with a reason (REVIEWER).
    async fn request_changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(desc = "What the editor is asked to change.")] reason: String,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        Ok(on_article(
            ctx,
            &article_id,
            expected_version,
            Action::RequestChanges { reason },
            idempotency_key,
        )
        .await?)
    }

    /// Approves exactly this revision (REVIEWER who is not an author).
    async fn approve_revision(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(desc = "The revision number approved: it must be the one under review.")]
        revision: u32,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        Ok(on_article(
            ctx,
            &article_id,
            expected_version,
            Action::ApproveRevision {
                revision: RevisionNumber(revision),
            },
            idempotency_key,
        )
        .await?)
    }

    /// Publishes the approved revision (PUBLISHER): now, or at `publishAt`, which schedules it. A
    /// re-publication may carry a public `correction` note.
    async fn publish_article(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(
            desc = "When to publish (RFC 3339); now when absent. A time in the future schedules it."
        )]
        publish_at: Option<DateTime<Utc>>,
        #[graphql(desc = "A public correction note; only a re-publication may carry one.")]
        correction: Option<String>,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        let action = match publish_at {
            Some(publish_at) => Action::SchedulePublication {
                publish_at: check_time("publishAt", publish_at)?,
                correction,
            },
            None => Action::PublishNow { correction },
        };
        Ok(on_article(ctx, &article_id, expected_version, action, idempotency_key).await?)
    }

    /// Calls off a scheduled publication (PUBLISHER).
    async fn cancel_schedule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        Ok(on_article(
            ctx,
            &article_id,
            expected_version,
            Action::CancelSchedule,
            idempotency_key,
        )
        .await?)
    }

    /// Takes the live revision down, with a reason (PUBLISHER).
    async fn unpublish_article(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(desc = "Why the article is taken down.")] reason: String,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        Ok(on_article(
            ctx,
            &article_id,
            expected_version,
            Action::UnpublishArticle { reason },
            idempotency_key,
        )
        .await?)
    }

    /// Embargoes the article until a future time (EDITOR or PUBLISHER).
    async fn set_embargo(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(desc = "The time (RFC 3339) before which the article may not be published.")]
        until: DateTime<Utc>,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        Ok(on_article(
            ctx,
            &article_id,
            expected_version,
            Action::SetEmbargo {
                until: check_time("until", until)?,
            },
            idempotency_key,
        )
        .await?)
    }

    /// Lifts the embargo, with a reason (ADMIN).
    async fn lift_embargo(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(desc = "Why the embargo is lifted early.")] reason: String,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        Ok(on_article(
            ctx,
            &article_id,
            expected_version,
            Action::LiftEmbargo { reason },
            idempotency_key,
        )
        .await?)
    }

    /// Archives the article, not while live (PUBLISHER or ADMIN).
    async fn archive_article(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        Ok(on_article(
            ctx,
            &article_id,
            expected_version,
            Action::ArchiveArticle,
            idempotency_key,
        )
        .await?)
    }

    /// Brings an archived article back as a draft (PUBLISHER or ADMIN).
    async fn restore_article(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        Ok(on_article(
            ctx,
            &article_id,
            expected_version,
            Action::RestoreArticle,
            idempotency_key,
        )
        .await?)
    }

    /// Makes an old revision's content the new current revision (EDITOR); history is never
    /// rewritten.
    async fn restore_revision(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] article_id: ID,
        #[graphql(
            desc = "The article's version this command expects; a different current version is a CONFLICT that reports currentVersion."
        )]
        expected_version: u64,
        #[graphql(
            desc = "The earlier revision number whose content becomes the new working copy."
        )]
        revision: u32,
        #[graphql(
            desc = "A key of the caller's choosing: the same key from the same user with the same command returns the first outcome instead of running again; with another command it is IDEMPOTENCY_KEY_REUSED."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ArticlePayload> {
        Ok(on_article(
            ctx,
            &article_id,
            expected_version,
            Action::RestoreRevision {
                revision: RevisionNumber(revision),
            },
            idempotency_key,
        )
        .await?)
    }
}
