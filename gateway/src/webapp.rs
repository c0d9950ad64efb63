//! The web app at `/` (buyer clocks, market page, grower, logistics, operator console, a lot's
//! trace, the delivery note): the static files of
//! `gateway/web/`, embedded in the binary at compile time and served as they are — no build step.
//!
//! Every asset is listed once in [`ASSETS`] with its path and content type; [`routes`] turns the
//! list into GET routes (axum answers HEAD too) that the server merges into its router. Responses
//! carry `Cache-Control: no-cache`, so a browser revalidates after an upgrade of the server, and
//! the page carries a Content-Security-Policy that lets it load nothing but itself (grower photos
//! and the WebSocket aside).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file of the web app.
#[derive(Debug)]
pub struct Asset {
    /// Where it is served, e.g. `/app.js`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! asset {
    ($path:literal, $file:literal, $content_type:expr) => {
        Asset { path: $path, content_type: $content_type, body: include_bytes!(concat!("../web/", $file)) }
    };
}

/// Every file of the web app. A new file in `gateway/web/` is served only once it is listed here
/// (the tests check that every file the page or a module refers to is).
pub const ASSETS: &[Asset] = &[
    asset!("/", "index.html", HTML),
    asset!("/index.html", "index.html", HTML),
    asset!("/style.css", "style.css", CSS),
    asset!("/favicon.svg", "favicon.svg", SVG),
    asset!("/app.js", "app.js", JS),
    asset!("/money.js", "money.js", JS),
    asset!("/net.js", "net.js", JS),
    asset!("/state.js", "state.js", JS),
    asset!("/ui.js", "ui.js", JS),
    asset!("/words.js", "words.js", JS),
    asset!("/chart.js", "chart.js", JS),
    asset!("/clockface.js", "clockface.js", JS),
    asset!("/lots.js", "lots.js", JS),
    asset!("/products.js", "products.js", JS),
    asset!("/catalogue.js", "catalogue.js", JS),
    asset!("/buyer.js", "buyer.js", JS),
    asset!("/market.js", "market.js", JS),
    asset!("/grower.js", "grower.js", JS),
    asset!("/operator.js", "operator.js", JS),
    asset!("/dispatch.js", "dispatch.js", JS),
    asset!("/statement.js", "statement.js", JS),
    asset!("/goods.js", "goods.js", JS),
    asset!("/trace.js", "trace.js", JS),
    asset!("/delivery.js", "delivery.js", JS),
    asset!("/logistics.js", "logistics.js", JS),
];

/// The page may run its own scripts and styles only; it talks WebSocket to its own server (or the
/// one named by `?server=` during development) and shows grower photos from wherever they are.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: http: https:; connect-src 'self' ws: wss: http: https:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

/// The web app's routes, for any router state: `server_router.merge(webapp::routes())`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS
        .iter()
        .fold(Router::new(), |router, asset| router.route(asset.path, get(move || async move { respond(asset) })))
        // A lot's public trace page (protocol §12, the QR code on a delivery note): the app itself.
        .route("/lot/{lot_id}", get(|| async { respond(asset("/").expect("the page is embedded")) }))
}

/// The web app's routes as a stateless router: `.merge(webapp::router())`.
pub fn router() -> Router {
    routes()
}

/// The embedded file served at `path`, if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

fn respond(asset: &'static Asset) -> Response {
    let headers = [
        (header::CONTENT_TYPE, asset.content_type),
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    if asset.content_type == HTML {
        (headers, [(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)], asset.body).into_response()
    } else {
        (headers, asset.body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(asset: &Asset) -> &'static str {
        std::str::from_utf8(asset.body).expect("web assets are UTF-8")
    }

    /// `"/x.js"`, `'./x.js'`, `"/style.css"`… after each of `markers` in `source`.
    fn references(source: &str, markers: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        for marker in markers {
            for (at, _) in source.match_indices(marker) {
                let rest = &source[at + marker.len()..];
                let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else { continue };
                let Some(end) = rest[1..].find(quote) else { continue };
                let target = &rest[1..1 + end];
                if let Some(local) = target.strip_prefix("./").or_else(|| target.strip_prefix('/')) {
                    found.push(format!("/{local}"));
                }
            }
        }
        found
    }

    #[test]
    fn every_file_the_page_and_its_modules_load_is_served() {
        let page = references(text(asset("/").unwrap()), &["src=", "href="]);
        assert!(page.contains(&"/app.js".to_string()) && page.contains(&"/style.css".to_string()), "{page:?}");
        for path in page {
            assert!(asset(&path).is_some(), "index.html refers to {path}, which is not in ASSETS");
        }
        for module in ASSETS.iter().filter(|a| a.content_type == JS) {
            for path in references(text(module), &["from ", "import("]) {
                assert!(asset(&path).is_some(), "{} imports {path}, which is not in ASSETS", module.path);
            }
        }
    }

    #[test]
    fn paths_are_unique_and_content_types_match_the_files() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(ASSETS[..i].iter().all(|b| b.path != a.path), "{} listed twice", a.path);
            let expected = match a.path.rsplit('.').next() {
                Some("js") => JS,
                Some("css") => CSS,
                Some("svg") => SVG,
                _ => HTML,
            };
            assert_eq!(a.content_type, expected, "{}", a.path);
            assert!(!a.body.is_empty(), "{} is empty", a.path);
        }
    }

    #[test]
    fn responses_are_never_cached_stale_and_the_page_has_a_policy() {
        let page = respond(asset("/").unwrap());
        assert_eq!(page.headers()[header::CONTENT_TYPE], HTML);
        assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
        let script = respond(asset("/app.js").unwrap());
        assert_eq!(script.headers()[header::CONTENT_TYPE], JS);
        assert_eq!(script.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(script.headers().get(header::CONTENT_SECURITY_POLICY).is_none());
    }

    #[test]
    fn the_router_builds_for_any_state() {
        let _: Router = router();
        let _: Router<std::sync::Arc<String>> = routes();
    }

    #[test]
    fn nothing_loads_from_the_internet() {
        for a in ASSETS.iter().filter(|a| a.content_type != SVG) {
            let source = text(a);
            for marker in ["src=\"http", "href=\"http", "@import", "url(http", "from 'http", "from \"http"] {
                assert!(!source.contains(marker), "{} loads {marker}…", a.path);
            }
        }
    }
}
