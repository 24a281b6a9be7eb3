//! The review queue: the versions waiting for review under a directory, oldest first.

use super::{
    Limit, StorageService,
    files::split_page,
    pagination::{decode_time_cursor, encode_time_cursor},
};
use crate::error::StorageError;
use crate::model::{DirPath, RequestContext, VersionId};
use crate::ports::{PendingReview, ReviewCursor};
use crate::rules::Operation;

/// One page of the review queue.
#[derive(Debug, Clone)]
pub struct ReviewPage {
    pub reviews: Vec<PendingReview>,
    pub next_cursor: Option<String>,
}

const REVIEWS_CURSOR: &str = "reviews";

impl StorageService {
    /// `GET /reviews`: the versions `pending_validation` of the files under a directory (at
    /// any depth), oldest first, each with its file (action `read`).
    ///
    /// # Errors
    /// Access errors, `invalid_request` (limit, cursor), faults.
    pub async fn list_reviews(
        &self,
        ctx: &RequestContext,
        dir: DirPath,
        cursor: Option<&str>,
        limit: Limit,
    ) -> Result<ReviewPage, StorageError> {
        let after = cursor.map(decode_reviews_cursor).transpose()?;
        self.authorize(ctx, &[super::files::dir_need(Operation::ListReviews, &dir)])
            .await?;
        let fetched = self
            .ports
            .metadata
            .list_pending_reviews(&dir, after, limit.get() + 1)
            .await?;
        let (reviews, more) = split_page(fetched, limit);
        let next_cursor = more
            .then(|| reviews.last().map(encode_reviews_cursor))
            .flatten();
        Ok(ReviewPage {
            reviews,
            next_cursor,
        })
    }
}

fn encode_reviews_cursor(review: &PendingReview) -> String {
    encode_time_cursor(REVIEWS_CURSOR, review.version.created_at, review.version.id)
}

fn decode_reviews_cursor(cursor: &str) -> Result<ReviewCursor, StorageError> {
    let (created_at, version_id) = decode_time_cursor(REVIEWS_CURSOR, cursor, VersionId::parse)?;
    Ok(ReviewCursor {
        created_at,
        version_id,
    })
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use chrono::{DateTime, Utc};

    use super::super::encode_cursor;
    use super::super::test_support::{Mocks, ctx, file, path, version_of};
    use super::*;
    use crate::model::{BucketKind, VersionStatus};
    use crate::ports::{AccessDecision, ProjectAction};

    fn pending(raw: &str, number: u32) -> PendingReview {
        let f = file(&path(BucketKind::Projects, raw), number);
        let version = version_of(&f, number, VersionStatus::PendingValidation);
        PendingReview { file: f, version }
    }

    #[test]
    fn a_page_asks_one_more_and_its_cursor_resumes_after_the_last_sent() {
        let mut m = Mocks::new();
        m.projects
            .expect_check()
            .withf(|_, c| c.action == ProjectAction::Read && c.project_id.as_str() == "5678")
            .times(2)
            .returning(|_, _| Ok(AccessDecision::Allowed { role: None }));
        let first = [
            pending("/projects/5678/a.pdf", 2),
            pending("/projects/5678/d/b.pdf", 1),
        ];
        let resumed = first[0].version.clone();
        let mut seq = mockall::Sequence::new();
        let page = first.to_vec();
        m.meta
            .expect_list_pending_reviews()
            .withf(|dir, after, limit| {
                dir.as_str() == "/projects/5678/" && after.is_none() && *limit == 2
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _, _| Ok(page.clone()));
        m.meta
            .expect_list_pending_reviews()
            .withf(move |_, after, _| {
                *after
                    == Some(ReviewCursor {
                        created_at: resumed.created_at,
                        version_id: resumed.id,
                    })
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(Vec::new()));
        let svc = m.service();
        let dir = DirPath::parse_request("projects", "/projects/5678/").unwrap();
        let limit = Limit::new(Some(1)).unwrap();
        let page = block_on(svc.list_reviews(&ctx("bob", None), dir.clone(), None, limit)).unwrap();
        assert_eq!(page.reviews, vec![first[0].clone()]);
        let cursor = page.next_cursor.expect("a next page");
        let next =
            block_on(svc.list_reviews(&ctx("bob", None), dir, Some(&cursor), limit)).unwrap();
        assert!(next.reviews.is_empty() && next.next_cursor.is_none());
    }

    #[test]
    fn a_caller_who_may_not_read_the_directory_is_refused_before_any_lookup() {
        let mut m = Mocks::new();
        m.projects
            .expect_check()
            .returning(|_, _| Ok(AccessDecision::Denied { reason: None }));
        // No expectation on the store: asking it would panic.
        let svc = m.service();
        let denied = |raw: &str, bucket: &str| {
            let dir = DirPath::parse_request(bucket, raw).unwrap();
            block_on(svc.list_reviews(&ctx("bob", None), dir, None, Limit::new(None).unwrap()))
                .unwrap_err()
        };
        assert!(matches!(
            denied("/projects/5678/", "projects"),
            StorageError::AccessDenied(_)
        ));
        assert!(matches!(
            denied("/users/alice/", "users"),
            StorageError::AccessDenied(_)
        ));
    }

    #[test]
    fn reviews_cursors_round_trip_and_refuse_others() {
        let created_at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let version_id = VersionId::from_uuid(uuid::Uuid::now_v7());
        let raw = encode_cursor(
            REVIEWS_CURSOR,
            &format!("{}|{}", created_at.to_rfc3339(), version_id),
        );
        assert_eq!(
            decode_reviews_cursor(&raw).unwrap(),
            ReviewCursor {
                created_at,
                version_id
            }
        );
        for bad in [
            encode_cursor(
                "audit",
                &format!("{}|{}", created_at.to_rfc3339(), version_id),
            ),
            encode_cursor(REVIEWS_CURSOR, "no bar"),
            encode_cursor(REVIEWS_CURSOR, &format!("yesterday|{version_id}")),
            encode_cursor(REVIEWS_CURSOR, &format!("{}|x", created_at.to_rfc3339())),
            encode_cursor(
                REVIEWS_CURSOR,
                &format!("0001-01-01T00:00:00Z|{version_id}"),
            ),
        ] {
            assert!(decode_reviews_cursor(&bad).is_err(), "{bad}");
        }
    }
}
