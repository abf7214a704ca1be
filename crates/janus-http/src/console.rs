//! The web console (`/console/`): plain HTML, CSS and ES modules embedded in
//! the binary, served by every node; `/` redirects there. The pages read and
//! change the registry only through the native API with the user's token,
//! so the console has no access rules of its own (`docs/console.md`).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// One embedded file: its name under `/console/`, its type and its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset { name: $name, content_type: $type, body: include_bytes!(concat!("../console/", $name)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the console.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("ui.js", JS),
    asset!("namespaces.js", JS),
    asset!("services.js", JS),
    asset!("service.js", JS),
    asset!("cluster.js", JS),
    asset!("access.js", JS),
];

/// The console talks to its own origin only and cannot be framed.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
                      form-action 'self'; frame-ancestors 'none'";

/// `GET /` and `GET /console`: to the console.
pub(crate) async fn redirect() -> Redirect {
    Redirect::to("/console/")
}

/// `GET /console/`.
pub(crate) async fn index() -> Response {
    serve("index.html")
}

/// `GET /console/{asset}`.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    serve(&name)
}

fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, format!("no console file named {name:?}\n")).into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    // The files change with the binary: revalidate rather than cache blindly.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module a console file imports is embedded, and every embedded
    /// file is used: a page added without its asset row fails here, not in
    /// a browser.
    #[test]
    fn every_import_is_embedded_and_every_file_used() {
        let names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        let mut used = vec!["index.html"];
        for asset in ASSETS {
            let text = std::str::from_utf8(asset.body).expect("console files are UTF-8");
            for quote in ["'./", "\"./", "href=\"", "src=\""] {
                for (at, _) in text.match_indices(quote) {
                    let rest = &text[at + quote.len()..];
                    let end = rest.find(['\'', '"']).unwrap_or(rest.len());
                    let name = &rest[..end];
                    if name.ends_with(".js") || name.ends_with(".css") {
                        assert!(names.contains(&name), "{} uses {name}, which is not embedded", asset.name);
                        used.push(name);
                    }
                }
            }
        }
        for name in names {
            assert!(used.contains(&name), "{name} is embedded but nothing loads it");
        }
    }

    #[test]
    fn unknown_files_are_404_and_known_ones_typed() {
        assert_eq!(serve("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        let response = serve("app.js");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], JS);
    }
}
