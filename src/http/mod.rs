//! The REST API: one file per resource, thin handlers over `db` and `auth`.

mod accounts;
mod admin;
mod appointments;
mod dashboard;
mod doctors;
pub mod filters;
mod health;
mod openapi;
mod password_reset;
mod query;
mod second_factor;
mod sessions;
mod time_query;
mod views;
mod web;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::error::recover;
use crate::state::AppState;

pub use openapi::ApiDoc;
pub use views::{AppointmentView, UserView};

/// Every route of the server, with errors turned into problem responses.
pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let api = health::routes()
        .or(accounts::routes(state.clone()))
        .unify()
        .or(admin::routes(state.clone()))
        .unify()
        .or(doctors::routes(state.clone()))
        .unify()
        .or(appointments::routes(state.clone()))
        .unify()
        .or(dashboard::routes(state.clone()))
        .unify()
        .or(sessions::routes(state.clone()))
        .unify()
        .or(password_reset::routes(state.clone()))
        .unify()
        .or(second_factor::routes(state.clone()))
        .unify()
        .or(openapi::routes())
        .unify();
    // The pages come after the API so no page path can shadow an API route.
    let web = web::routes(state);
    api.or(web).unify().recover(recover).unify().boxed()
}

/// A JSON reply with a status.
pub fn json_reply<T: serde::Serialize>(value: &T, status: http::StatusCode) -> Response {
    use warp::Reply as _;
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}
