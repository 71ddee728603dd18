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
        second_factor::two_factor_status,
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
    modifiers(&SecuritySchemes, &ProblemResponses),
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

/// Error answers are `application/problem+json` (not the `application/json`
/// utoipa writes by default), and the ones any operation can give are
/// listed on every operation: 503 when the database is down, 401 where a
/// sign-in is needed, and 400/413/415/422 where a JSON body is read.
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        const PROBLEM: &str = "application/problem+json";
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(PROBLEM, ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build())
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in operations.into_iter().flatten() {
                for response in op.responses.responses.values_mut() {
                    let RefOr::T(response) = response else { continue };
                    let is_problem = response.content.get("application/json").is_some_and(
                        |c| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem")),
                    );
                    if is_problem && let Some(content) = response.content.shift_remove("application/json") {
                        response.content.insert(PROBLEM.to_owned(), content);
                    }
                }
                let mut common = vec![("503", "The database is unavailable; try again shortly")];
                if op.security.is_some() {
                    common.push(("401", "Not signed in"));
                }
                if op.request_body.is_some() {
                    common.push(("400", "The body is not valid JSON"));
                    common.push(("413", "The body is larger than 64 KiB"));
                    common.push(("415", "The body is not application/json"));
                    common.push(("422", "The body's fields are missing or of the wrong type"));
                }
                for (status, description) in common {
                    op.responses.responses.entry(status.to_owned()).or_insert_with(|| problem(description));
                }
            }
        }
    }
}

pub fn routes() -> BoxedFilter<(Response,)> {
    warp::path!("api" / "openapi.json")
        .and(warp::get())
        .map(|| json_reply(&ApiDoc::openapi(), http::StatusCode::OK))
        .boxed()
}
