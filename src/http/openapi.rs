//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::{
    accounts, admin, appointments, dashboard, doctors, health, json_reply, password_reset, second_factor, sessions,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Consulta API", description = "Self-hosted telehealth hub. Errors are RFC 9457 problem+json."),
    paths(
        health::health,
        accounts::register,
        accounts::login,
        accounts::logout,
        accounts::me,
        accounts::change_password,
        sessions::list_sessions,
        sessions::end_session,
        password_reset::request_password_reset,
        password_reset::confirm_password_reset,
        second_factor::setup_two_factor,
        second_factor::enable_two_factor,
        second_factor::login_second_factor,
        admin::create_user,
        admin::list_users,
        admin::read_audit,
        admin::list_mail,
        doctors::list_doctors,
        doctors::put_availability,
        doctors::get_availability,
        doctors::list_slots,
        appointments::book_appointment,
        appointments::list_appointments,
        appointments::get_appointment,
        appointments::cancel_appointment,
        appointments::reschedule_appointment,
        dashboard::dashboard,
    ),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::auth::SESSION_COOKIE))),
        );
    }
}

pub fn routes() -> BoxedFilter<(Response,)> {
    warp::path!("api" / "openapi.json")
        .and(warp::get())
        .map(|| json_reply(&ApiDoc::openapi(), http::StatusCode::OK))
        .boxed()
}
