//! The web console at `/console`: a few static files (HTML, ES modules, CSS) compiled into the
//! binary with `include_bytes!`, served under a strict Content-Security-Policy. The console is
//! a client of the public API like any other: it calls the routes of this service from the
//! same origin, with the `access_token` cookie or a bearer token the user pasted.
//!
//! Every path under `/console/` that is not an asset answers the same page, so that the
//! console's own URLs (`/console/browse/users/alice/notes/`) can be bookmarked and shared; the
//! page reads its location and renders the view.

use actix_web::{
    HttpRequest, HttpResponse, Resource,
    http::header::{self, HeaderValue},
    web,
};
use bytes::Bytes;

use crate::{
    error::{ApiError, Failure},
    handlers::resource,
    request_id::RequestId,
};

/// Where the console is served.
pub const CONSOLE_PATH: &str = "/console";

/// The console's page and its assets (`/console/assets/<name>`), as compiled in.
const PAGE: &str = include_str!("../console/index.html");
/// The page's element that tells the scripts where they may upload directly.
const DIRECT_ORIGINS_META: &str = r#"<meta name="console-direct-origins" content="">"#;
const ASSETS: [(&str, &str, &[u8]); 5] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/api.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/ui.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/console.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../console/icon.svg"),
    ),
];

/// The console's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// Origins other than the service's own that the console may send bytes to: those of the
    /// object store's presigned URLs (S3). Added to the policy's `connect-src`; without them a
    /// presigned upload to another origin is blocked by the browser and the console sends the
    /// file through the service instead.
    pub direct_origins: Vec<String>,
}

impl ConsoleConfig {
    /// The Content-Security-Policy of the console's answers: nothing but this origin's own
    /// scripts, styles and images (no inline script or style, no `eval`), requests to this
    /// origin and the direct upload origins, no frames, no plugins, forms posted nowhere else.
    pub fn content_security_policy(&self) -> String {
        let mut connect = String::from("'self'");
        for origin in &self.direct_origins {
            connect.push(' ');
            connect.push_str(origin);
        }
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src {connect}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        )
    }

    /// The page, naming the direct upload origins for the scripts (an attribute, not a script:
    /// the policy allows no inline script).
    fn page(&self) -> String {
        let origins = self
            .direct_origins
            .iter()
            .map(|o| {
                o.chars()
                    .filter(|c| !matches!(c, '"' | '<' | '>' | '&' | '\'') && !c.is_whitespace())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join(" ");
        PAGE.replacen(
            DIRECT_ORIGINS_META,
            &format!(r#"<meta name="console-direct-origins" content="{origins}">"#),
            1,
        )
    }
}

/// The console's routes: the page at `/console` and every path under it, the assets under
/// `/console/assets/`.
pub(crate) fn resources(config: &ConsoleConfig) -> (Resource, Resource, Resource) {
    let policy = config.content_security_policy();
    let html = Bytes::from(config.page());
    let page = {
        let policy = policy.clone();
        move || {
            let (html, policy) = (html.clone(), policy.clone());
            async move { served(html, "text/html; charset=utf-8", &policy) }
        }
    };
    let asset = move |req: HttpRequest, name: web::Path<String>| {
        let policy = policy.clone();
        async move {
            match ASSETS.iter().find(|(n, _, _)| *n == name.as_str()) {
                Some((_, content_type, body)) => {
                    Ok(served(Bytes::from_static(body), content_type, &policy))
                }
                None => Err(ApiError::from_failure(
                    Failure::NoRoute,
                    RequestId::of(&req),
                )),
            }
        }
    };
    (
        resource(&format!("{CONSOLE_PATH}/assets/{{name}}"), "GET").route(web::get().to(asset)),
        resource(CONSOLE_PATH, "GET").route(web::get().to(page.clone())),
        resource(&format!("{CONSOLE_PATH}/{{view:.*}}"), "GET").route(web::get().to(page)),
    )
}

fn served(body: Bytes, content_type: &'static str, policy: &str) -> HttpResponse {
    let mut res = HttpResponse::Ok()
        .content_type(content_type)
        // The assets change with the binary: a browser asks again (cheap, a few KiB).
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(body);
    if let Ok(value) = HeaderValue::from_str(policy) {
        res.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_nothing_inline_and_adds_the_direct_origins() {
        let policy = ConsoleConfig {
            direct_origins: vec!["http://127.0.0.1:9000".into()],
        }
        .content_security_policy();
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert!(policy.contains("style-src 'self';"), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
        assert!(
            policy.contains("connect-src 'self' http://127.0.0.1:9000;"),
            "{policy}"
        );
        assert!(
            ConsoleConfig::default()
                .content_security_policy()
                .contains("connect-src 'self';")
        );
    }

    #[test]
    fn the_page_names_the_direct_origins_as_an_attribute() {
        let page = ConsoleConfig {
            direct_origins: vec![
                "http://s3.example:9000".into(),
                "https://x\"><script>".into(),
            ],
        }
        .page();
        assert!(page.contains(
            r#"<meta name="console-direct-origins" content="http://s3.example:9000 https://xscript">"#
        ), "{page}");
    }

    #[test]
    fn every_asset_the_page_names_is_served() {
        let page = PAGE;
        assert!(page.contains(DIRECT_ORIGINS_META));
        let mut named = 0;
        for (name, _, _) in ASSETS {
            if page.contains(&format!("/console/assets/{name}")) {
                named += 1;
            }
        }
        // The page loads the stylesheet, the icon and the entry module; the entry module
        // imports the others.
        assert_eq!(named, 3, "{page}");
        let app = std::str::from_utf8(ASSETS[0].2).expect("utf-8");
        for module in ["./api.js", "./ui.js"] {
            assert!(app.contains(module), "app.js imports {module}");
        }
    }
}
