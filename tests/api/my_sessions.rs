//! `GET /api/me/sessions` and `DELETE /api/me/sessions/{id}`: users see
//! where they are signed in and can end any of those sessions.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Backend, close_code, problem, spawn_app};
use crate::on_both_backends;

async fn a_user_lists_their_live_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.patient("pat@example.org").await;
    let second = app.session("pat@example.org").await;
    let other = app.patient("someone@example.org").await;

    let r = app
        .client
        .get(app.url("/api/me/sessions"))
        .bearer_auth(&second.token)
        .header("user-agent", "probe/1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Vec<Value> = r.json().await.unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    for s in &list {
        for field in ["id", "created_at", "last_seen_at"] {
            assert!(s[field].is_string(), "{field} in {s}");
        }
        assert_eq!(s["client_ip"], "127.0.0.1");
    }
    // Signing out removes it from the list; other users' sessions never appear.
    app.client.post(app.url("/api/auth/logout")).bearer_auth(&first.token).send().await.unwrap();
    let list: Vec<Value> = app.get_as(&second.token, "/api/me/sessions").await.json().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["current"], true);
    let list: Vec<Value> = app.get_as(&other.token, "/api/me/sessions").await.json().await.unwrap();
    assert_eq!(list.len(), 1);
}
on_both_backends!(a_user_lists_their_live_sessions);

async fn ending_a_session_stops_its_token_and_closes_its_sockets(backend: Backend) {
    let app = spawn_app(backend).await;
    let laptop = app.patient("pat@example.org").await;
    let phone = app.session("pat@example.org").await;
    let mut phone_socket = app.ws_signed_in(&phone).await;

    let list: Vec<Value> = app.get_as(&laptop.token, "/api/me/sessions").await.json().await.unwrap();
    let phone_id = list.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    let r = app
        .client
        .delete(app.url(&format!("/api/me/sessions/{phone_id}")))
        .bearer_auth(&laptop.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    problem(app.get_as(&phone.token, "/api/me").await, 401).await;
    assert_eq!(app.get_as(&laptop.token, "/api/me").await.status(), 200);
    assert_eq!(close_code(&mut phone_socket, Duration::from_secs(5)).await, Some(4001));
    // Ending it again: it is no longer there.
    let r = app
        .client
        .delete(app.url(&format!("/api/me/sessions/{phone_id}")))
        .bearer_auth(&laptop.token)
        .send()
        .await
        .unwrap();
    problem(r, 404).await;
}
on_both_backends!(ending_a_session_stops_its_token_and_closes_its_sockets);

async fn another_users_session_is_404_and_survives(backend: Backend) {
    let app = spawn_app(backend).await;
    let mallory = app.patient("mallory@example.org").await;
    let victim = app.patient("victim@example.org").await;
    let list: Vec<Value> = app.get_as(&victim.token, "/api/me/sessions").await.json().await.unwrap();
    let victim_id = list[0]["id"].as_str().unwrap().to_owned();
    for id in [victim_id.as_str(), "not-a-session-id"] {
        let r = app
            .client
            .delete(app.url(&format!("/api/me/sessions/{id}")))
            .bearer_auth(&mallory.token)
            .send()
            .await
            .unwrap();
        problem(r, 404).await;
    }
    assert_eq!(app.get_as(&victim.token, "/api/me").await.status(), 200);
}
on_both_backends!(another_users_session_is_404_and_survives);
