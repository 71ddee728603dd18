//! The web front end as HTTP sees it: pages, assets, caching, redirects,
//! and that the API around it is unchanged.

use crate::helpers::{Backend, STRONG_PASSWORD, problem, spawn_app};

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn every_page_is_served_as_html_under_the_strict_csp() {
    let app = spawn_app(Backend::Sqlite).await;
    let room = format!("/room/{}", uuid::Uuid::new_v4());
    for path in [
        "/login",
        "/register",
        "/forgot",
        "/reset",
        "/account",
        "/dashboard",
        "/book",
        "/availability",
        "/admin",
        room.as_str(),
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8", "{path}");
        assert!(header(&r, "content-security-policy").starts_with("default-src 'self'"), "{path}");
        assert_eq!(header(&r, "cache-control"), "no-cache", "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains(r#"<script type="module" src="/js/pages/"#), "{path} loads its module");
        // Under `default-src 'self'` inline code would not run anyway; keep it out.
        assert!(!body.contains("<script>") && !body.contains(" style=") && !body.contains(" onclick="), "{path}");
    }
}

#[tokio::test]
async fn assets_have_their_types_and_revalidate_with_an_etag() {
    let app = spawn_app(Backend::Sqlite).await;
    for (path, kind) in [("/js/api.js", "text/javascript; charset=utf-8"), ("/css/app.css", "text/css; charset=utf-8")]
    {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, "content-type"), kind);
        let etag = header(&r, "etag");
        assert!(etag.starts_with('"'), "{path}: {etag}");
        let again = app.client.get(app.url(path)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn unknown_files_and_paths_outside_the_folders_are_404_problems() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in [
        "/js/nope.js",
        "/nope",
        "/login.html",
        "/jsconfig.json",
        "/README.md",
        "/room/not-an-id",
        "/js/%2e%2e/%2e%2e/Cargo.toml",
        "/js/.hidden",
        "/api/nope",
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        problem(r, 404).await;
    }
    // Pages are read-only; the API's own answers are unchanged.
    problem(app.client.post(app.url("/login")).send().await.unwrap(), 405).await;
    assert_eq!(app.client.get(app.url("/api/health")).send().await.unwrap().status(), 200);
    problem(app.client.get(app.url("/api/me")).send().await.unwrap(), 401).await;
}

#[tokio::test]
async fn the_root_leads_to_the_dashboard_or_to_sign_in() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(header(&r, "location"), "/login");

    app.patient("pat@example.com").await;
    let browser = app.browser();
    let login = serde_json::json!({"email": "pat@example.com", "password": STRONG_PASSWORD});
    let r = browser.post(app.url("/api/auth/login")).json(&login).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = browser.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(header(&r, "location"), "/dashboard");
    assert_eq!(header(&r, "cache-control"), "no-store");
}
