//! `WEBHOOKS_FILE`: a JSON array of `{"url", "secret", "events"?, "bucket"?, "path_prefix"?}`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use storage_domain::model::{BucketKind, EventType};
use storage_domain::rules::events::EventFilter;

/// One webhook subscription, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    pub url: reqwest::Url,
    /// The HMAC key: the base64 part of the `whsec_…` secret, decoded.
    pub key: Vec<u8>,
    pub filter: EventFilter,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("url", &self.url.as_str())
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: String,
    secret: String,
    events: Option<Vec<String>>,
    bucket: Option<String>,
    path_prefix: Option<String>,
}

/// Parses and checks the subscriptions: each URL absolute, `https` unless `allow_http`
/// (development and testing), without credentials; each secret `whsec_` and base64 of at least
/// 24 bytes; event types and buckets known.
///
/// # Errors
/// The first problem, naming the subscription by its position.
pub fn parse_subscriptions(json: &str, allow_http: bool) -> Result<Vec<Subscription>, String> {
    let raw: Vec<Raw> = serde_json::from_str(json)
        .map_err(|e| format!("not a JSON array of subscriptions: {e}"))?;
    let subs: Vec<Subscription> = raw
        .into_iter()
        .enumerate()
        .map(|(i, r)| check(r, allow_http).map_err(|e| format!("subscription {i}: {e}")))
        .collect::<Result<_, _>>()?;
    // A sink's name (its URL without the query) is its identity in the outbox's per-sink
    // delivery state: two subscriptions must not share one.
    let mut names = std::collections::HashMap::new();
    for (i, sub) in subs.iter().enumerate() {
        if let Some(first) = names.insert(sink_name(&sub.url), i) {
            return Err(format!(
                "subscription {i}: the same URL (query aside) as subscription {first}"
            ));
        }
    }
    Ok(subs)
}

/// A webhook sink's name: its URL without the query (which may hold a token), stable across
/// restarts; its identity in the outbox (`OutboxEvent::acked`).
pub fn sink_name(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

fn check(r: Raw, allow_http: bool) -> Result<Subscription, String> {
    let url = reqwest::Url::parse(&r.url).map_err(|e| format!("url '{}': {e}", r.url))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err("url: only https URLs outside development and testing".into()),
        other => return Err(format!("url: scheme {other} is not https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("url: no credentials in the URL (the signature authenticates)".into());
    }
    let encoded = r
        .secret
        .strip_prefix("whsec_")
        .ok_or("secret: must start with whsec_")?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|e| format!("secret: the part after whsec_ is not base64: {e}"))?;
    if key.len() < 24 {
        return Err("secret: at least 24 bytes (32 recommended)".into());
    }
    let types = r
        .events
        .map(|names| {
            names
                .iter()
                .map(|n| {
                    EventType::from_stored(n).ok_or_else(|| format!("events: unknown type {n}"))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    if let Some(bucket) = &r.bucket {
        BucketKind::parse(bucket).map_err(|_| format!("bucket: unknown bucket {bucket}"))?;
    }
    if let Some(prefix) = &r.path_prefix
        && !prefix.starts_with('/')
    {
        return Err("path_prefix: must start with /".into());
    }
    Ok(Subscription {
        url,
        key,
        filter: EventFilter {
            types,
            bucket: r.bucket,
            path_prefix: r.path_prefix,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn a_subscription_is_read_with_its_filter() {
        let subs = parse_subscriptions(
            &format!(
                r#"[{{"url":"https://hooks.example/a","secret":"{SECRET}","events":["lock.forced"],"bucket":"projects","path_prefix":"/projects/5678/"}},
                   {{"url":"https://hooks.example/b","secret":"{SECRET}"}}]"#
            ),
            false,
        )
        .unwrap();
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0].filter.types, Some(vec![EventType::LockForced]));
        assert_eq!(subs[0].key.len(), 24);
        assert_eq!(subs[1].filter, EventFilter::default());
    }

    #[test]
    fn bad_subscriptions_are_refused() {
        let one = |body: &str, http: bool| parse_subscriptions(&format!("[{body}]"), http);
        let ok = format!(r#"{{"url":"http://127.0.0.1:9/h","secret":"{SECRET}"}}"#);
        assert!(one(&ok, true).is_ok());
        assert!(one(&ok, false).unwrap_err().contains("https"));
        for bad in [
            format!(r#"{{"url":"ftp://x/h","secret":"{SECRET}"}}"#),
            format!(r#"{{"url":"https://u:p@x/h","secret":"{SECRET}"}}"#),
            r#"{"url":"https://x/h","secret":"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}"#.to_owned(),
            r#"{"url":"https://x/h","secret":"whsec_!!"}"#.to_owned(),
            r#"{"url":"https://x/h","secret":"whsec_c2hvcnQ="}"#.to_owned(),
            format!(r#"{{"url":"https://x/h","secret":"{SECRET}","events":["file.moved"]}}"#),
            format!(r#"{{"url":"https://x/h","secret":"{SECRET}","bucket":"tmp"}}"#),
            format!(r#"{{"url":"https://x/h","secret":"{SECRET}","path_prefix":"x"}}"#),
            format!(r#"{{"url":"https://x/h","secret":"{SECRET}","other":1}}"#),
        ] {
            assert!(one(&bad, true).is_err(), "{bad}");
        }
        assert!(parse_subscriptions("{}", true).is_err());
    }

    #[test]
    fn two_subscriptions_may_not_share_a_sink_name() {
        let two = |a: &str, b: &str| {
            parse_subscriptions(
                &format!(
                    r#"[{{"url":"{a}","secret":"{SECRET}"}},{{"url":"{b}","secret":"{SECRET}"}}]"#
                ),
                false,
            )
        };
        assert!(two("https://x/a", "https://x/b").is_ok());
        let err = two("https://x/a?t=1", "https://x/a?t=2").unwrap_err();
        assert!(
            err.contains("subscription 1") && err.contains("subscription 0"),
            "{err}"
        );
    }
}
