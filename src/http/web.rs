//! The browser front end: pages and assets from `web/`.
//!
//! rust-embed compiles the folder into release builds and reads it from disk
//! in debug builds (its default without `debug-embed`), so editing a page
//! while developing needs no rebuild.

use std::borrow::Cow;

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::filters::with_state;
use crate::domain::AppointmentId;
use crate::state::AppState;

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct WebFiles;

/// Pages served at `/{name}` from `web/{name}.html`.
const PAGES: &[&str] =
    &["login", "register", "forgot", "reset", "account", "dashboard", "book", "availability", "admin"];

/// Folders served as they are, at `/{folder}/…`.
const ASSET_FOLDERS: &[&str] = &["js", "css", "img"];

/// No file name carries a content hash (there is no build step), so the
/// browser must ask again every time; the ETag makes that a bodiless 304.
/// A long max-age would mix old modules with new pages after an upgrade.
const REVALIDATE: &str = "no-cache";

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    // Each route first decides whether the path is one of its files and
    // only then checks the method, so `POST /nope` stays a 404, not a 405.
    let read = || warp::get().or(warp::head()).unify();
    let if_none_match = || warp::header::optional::<String>("if-none-match");
    let home = warp::path::end().and(read()).and(with_state(state)).and(warp::header::headers_cloned()).then(home);
    let page = warp::path!(String).and_then(|name: String| async move {
        if PAGES.contains(&name.as_str()) { Ok(format!("{name}.html")) } else { Err(not_found()) }
    });
    // The room page reads its id from the address; only well-formed ids get it.
    let room = warp::path!("room" / String).and_then(|id: String| async move {
        if id.parse::<AppointmentId>().is_ok() { Ok("room.html".to_owned()) } else { Err(not_found()) }
    });
    let asset = warp::path::param::<String>().and(warp::path::tail()).and_then(
        |folder: String, tail: warp::path::Tail| async move {
            if ASSET_FOLDERS.contains(&folder.as_str()) && is_plain_path(tail.as_str()) {
                Ok(format!("{folder}/{}", tail.as_str()))
            } else {
                Err(not_found())
            }
        },
    );
    let file = page
        .or(room)
        .unify()
        .or(asset)
        .unify()
        .and(read())
        .and(if_none_match())
        .and_then(|path: String, etag| async move { serve(&path, etag) });
    home.or(file).unify().boxed()
}

fn not_found() -> Rejection {
    warp::reject::not_found()
}

/// No empty, hidden or parent segments: the request can only name a file
/// inside the asset folder (rust-embed checks too; this is the first line).
fn is_plain_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(|segment| !segment.is_empty() && !segment.starts_with('.'))
}

/// `/` goes to the dashboard when the request carries a valid session, else
/// to the sign-in page.
async fn home(state: AppState, headers: HeaderMap) -> Response {
    let signed_in = crate::auth::authenticate(&state, &Method::GET, &headers).await.is_ok();
    let target = if signed_in { "/dashboard" } else { "/login" };
    let mut response = Response::new(Default::default());
    *response.status_mut() = StatusCode::SEE_OTHER;
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_static(target));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn serve(path: &str, if_none_match: Option<String>) -> Result<Response, Rejection> {
    let file = WebFiles::get(path).ok_or_else(not_found)?;
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let mut response = if if_none_match.is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag)) {
        let mut response = Response::new(Default::default());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let body = match file.data {
            Cow::Borrowed(bytes) => bytes::Bytes::from_static(bytes),
            Cow::Owned(bytes) => bytes::Bytes::from(bytes),
        };
        let mut response = Response::new(body.into());
        if let Ok(value) = HeaderValue::from_str(&content_type(path, file.metadata.mimetype())) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    Ok(response)
}

/// The guessed type, with a charset for text; JavaScript as RFC 9239 names it.
fn content_type(path: &str, guessed: &str) -> String {
    if path.ends_with(".js") || path.ends_with(".mjs") {
        return "text/javascript; charset=utf-8".to_owned();
    }
    if guessed.starts_with("text/") || guessed == "application/json" || guessed == "image/svg+xml" {
        format!("{guessed}; charset=utf-8")
    } else {
        guessed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_reach_the_files() {
        assert!(is_plain_path("api.js"));
        assert!(is_plain_path("pages/login.js"));
        for bad in ["", "../Cargo.toml", "a/../../x", ".hidden", "a//b", "a/"] {
            assert!(!is_plain_path(bad), "{bad}");
        }
    }

    #[test]
    fn every_page_and_the_room_exist() {
        for page in PAGES.iter().map(|p| format!("{p}.html")).chain(["room.html".to_owned()]) {
            assert!(WebFiles::get(&page).is_some(), "web/{page} is missing");
        }
    }

    #[test]
    fn content_types_name_a_charset_for_text() {
        assert_eq!(content_type("js/api.js", "application/javascript"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("css/app.css", "text/css"), "text/css; charset=utf-8");
        assert_eq!(content_type("img/logo.png", "image/png"), "image/png");
    }
}
