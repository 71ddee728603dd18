use serde::Serialize;
use utoipa::ToSchema;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::json_reply;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers.
    pub status: &'static str,
}

pub fn routes() -> BoxedFilter<(Response,)> {
    warp::path!("api" / "health").and(warp::get().or(warp::head()).unify()).map(health).boxed()
}

/// Liveness: the server is up and serving.
#[utoipa::path(get, path = "/api/health", tag = "system",
    responses((status = 200, description = "The server is up", body = Health)))]
pub fn health() -> Response {
    json_reply(&Health { status: "ok" }, http::StatusCode::OK)
}
