//! HTML pages (askama templates from the top-level `templates/`, CSS from `static/`,
//! both compiled into the binary so it runs from any directory). Every page gets the
//! browser security headers.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::endpoints;
use crate::startup::AppState;

const SITE_NAME: &str = "idp";
const STYLESHEET: &str = include_str!("../../static/style.css");

/// No scripts, no framing, no referrer leaks. `form-action` is left out on purpose:
/// browsers apply it to the redirect that follows a form post, which is how sign-in
/// hands control back to a client.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(endpoints::HOME, get(home))
        .route(endpoints::STYLESHEET, get(stylesheet))
        .layer(security_header(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(security_header(header::REFERRER_POLICY, "no-referrer"))
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
struct HomePage {
    site_name: &'static str,
    discovery_path: &'static str,
    jwks_path: &'static str,
    health_path: &'static str,
}

async fn home() -> HomePage {
    HomePage {
        site_name: SITE_NAME,
        discovery_path: endpoints::DISCOVERY,
        jwks_path: endpoints::JWKS,
        health_path: endpoints::HEALTH,
    }
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}
