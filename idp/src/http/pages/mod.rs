//! HTML pages (askama templates from the top-level `templates/`, CSS from `static/`,
//! both compiled into the binary so it runs from any directory).
//!
//! Every response under the page routes gets the browser security headers, and
//! `Cache-Control: no-store` unless it says otherwise (pages carry forms, CSRF tokens
//! and personal data). Error responses become the HTML error page ([`error`]). The
//! browser routes (home, sign-in, registration, password reset, email verification,
//! consent, the account page and two-step sign-in, `/authorize`, `/logout`) also get
//! the session layer; the stylesheet does not.

pub mod account;
pub mod email;
pub mod error;
pub mod login;
pub mod passkeys;
pub mod recovery;
pub mod return_to;
pub mod second_factor;
pub mod two_step;
pub mod views;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use service_kit::api_error::ApiError;
use service_kit::http::RequestId;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::http::browser_session::BrowserSession;
use crate::http::endpoints;
use crate::http::state::AppState;
pub use error::PageError;
pub use views::{PageContext, SITE_NAME, render, render_with_status};

const STYLESHEET: &str = include_str!("../../../../static/style.css");
const PASSKEYS_SCRIPT: &str = include_str!("../../../../static/passkeys.js");
const FAVICON: &str = include_str!("../../../../static/favicon.svg");

/// Our own script only (the passkey buttons, `static/passkeys.js`, calling back to this
/// origin), no framing, no referrer leaks. `form-action` is left out on purpose:
/// browsers apply it to the redirect that follows a form post, which is how sign-in
/// hands control back to a client.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     connect-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// `browser` (the routes a browser navigates: pages, `/authorize`, `/logout`) with the
/// session layer, plus the stylesheet and favicon, all with the page layers.
pub fn with_page_layers(state: &AppState, browser: Router<AppState>) -> Router<AppState> {
    let pages = Router::new()
        .merge(state.sessions.layer(browser))
        .route(endpoints::STYLESHEET, get(stylesheet))
        .route(endpoints::PASSKEYS_SCRIPT, get(passkeys_script))
        .route(endpoints::FAVICON, get(favicon))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(error::render_error_pages))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(security_header(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(security_header(header::REFERRER_POLICY, "no-referrer"));
    if state.config.https {
        // RFC 6797: once a browser has seen us over https, it never tries http again.
        pages.layer(security_header(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000",
        ))
    } else {
        pages
    }
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

/// The fallback for unknown paths: the HTML error page for browsers (with the
/// security headers), the JSON error for everyone else.
pub async fn not_found(request: Request) -> Response {
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if !wants_html {
        return ApiError::not_found().into_response();
    }
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone());
    let mut response = error::error_page(&PageError::not_found(), request_id);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn method_not_allowed() -> PageError {
    PageError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Not allowed here",
        "This page cannot be used that way.",
    )
}

/// `GET /`: where to go from here.
pub async fn home(session: BrowserSession) -> Result<Response, PageError> {
    let user = session.user().await.map_err(|e| PageError::internal(&e))?;
    Ok(render(&views::HomePage {
        ctx: PageContext::without_form(),
        signed_in_as: user.map(|u| u.email),
        account_path: endpoints::ACCOUNT_PAGE,
        logout_path: endpoints::END_SESSION,
        login_path: endpoints::LOGIN_PAGE,
        register_path: endpoints::REGISTER_PAGE,
        discovery_path: endpoints::DISCOVERY,
        jwks_path: endpoints::JWKS,
        health_path: endpoints::HEALTH,
    }))
}

async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
}

async fn passkeys_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        PASSKEYS_SCRIPT,
    )
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
