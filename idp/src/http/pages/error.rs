//! The HTML error page: what a browser sees when something went wrong, with the
//! request id to quote when reporting it. Never a redirect.
//!
//! Handlers return a [`PageError`]; [`render_error_pages`] turns it (and any other
//! error response under the page routes, such as a rejected form or a 405) into the
//! page, where the request id is known.

use std::borrow::Cow;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use service_kit::http::RequestId;

use crate::http::pages::views::{self, PageContext, render};
use crate::oauth::{ErrorCode, OAuthError};

/// An error to show as a page.
#[derive(Clone, Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: Cow<'static, str>,
    /// An OAuth error code, shown for the developer of the application.
    pub code: Option<&'static str>,
    /// Its technical description, for the same reader.
    pub detail: Option<Cow<'static, str>>,
}

impl PageError {
    pub fn new(status: StatusCode, title: &'static str, message: &'static str) -> Self {
        Self {
            status,
            title,
            message: Cow::Borrowed(message),
            code: None,
            detail: None,
        }
    }

    /// A 500 whose page says nothing about the cause; the cause chain is logged here.
    pub fn internal(error: &anyhow::Error) -> Self {
        tracing::error!(
            error = format!("{error:#}"),
            "Page request failed unexpectedly"
        );
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "We could not complete your request. Please try again in a moment.",
        )
    }

    /// A form posted without this session's CSRF token.
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "For your security, forms only work for a limited time and in the browser \
             that opened them. Go back, reload the page and try again.",
        )
    }

    /// The waiting sign-in or consent request is gone (answered, expired, or from
    /// another browser).
    pub fn request_expired() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "This sign-in request has expired",
            "It was already completed, or waited too long. Return to the application \
             and start signing in again.",
        )
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is no page at this address.",
        )
    }

    pub fn bad_form() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "The form could not be read",
            "Go back, reload the page and try again.",
        )
    }

    /// An authorization or logout request we will not send back to the application:
    /// a message for the user, the code and description for the application's developer.
    pub fn oauth(error: &OAuthError) -> Self {
        let (title, message) = match error.code {
            ErrorCode::InvalidClient => (
                "Unknown application",
                "The application that sent you here is not registered with this service, \
                 so you cannot sign in to it from here.",
            ),
            ErrorCode::ServerError => (
                "Something went wrong",
                "We could not complete your request. Please try again in a moment.",
            ),
            _ => (
                "This request cannot be completed",
                "The application that sent you here made a request this service cannot \
                 accept. To protect you, you have not been sent back to it.",
            ),
        };
        Self {
            status: match error.code {
                ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            },
            title,
            message: Cow::Borrowed(message),
            code: Some(error.code.as_str()),
            detail: error.description.clone(),
        }
    }

    fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::not_found(),
            StatusCode::METHOD_NOT_ALLOWED => Self::new(
                status,
                "Not allowed here",
                "This page cannot be used that way.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                status,
                "Too much data",
                "The form sent more data than this page accepts.",
            ),
            s if s.is_server_error() => Self::new(
                s,
                "Something went wrong",
                "We could not complete your request. Please try again in a moment.",
            ),
            s => Self {
                status: s,
                ..Self::bad_form()
            },
        }
    }
}

impl IntoResponse for PageError {
    /// A bare status carrying the error; [`render_error_pages`] draws the page.
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Renders the error page for error responses under the page routes: a [`PageError`]
/// from a handler, or any other 4xx/5xx that is not HTML yet (axum's rejections, 405).
pub async fn render_error_pages(request: Request, next: Next) -> Response {
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone());
    let response = next.run(request).await;
    let status = response.status();
    let error = match response.extensions().get::<PageError>() {
        Some(error) => error.clone(),
        None if (status.is_client_error() || status.is_server_error())
            && !is_html(&response)
            && !is_json(&response) =>
        {
            PageError::from_status(status)
        }
        None => return response,
    };
    let (mut parts, _) = response.into_parts();
    let mut page = error_page(&error, request_id);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.extend(page.headers_mut().drain());
    parts.status = error.status;
    Response::from_parts(parts, page.into_body())
}

/// The error page as a complete response.
pub fn error_page(error: &PageError, request_id: Option<String>) -> Response {
    let page = views::ErrorPage {
        ctx: PageContext::without_form(),
        title: error.title,
        message: &error.message,
        code: error.code,
        detail: error.detail.as_deref(),
        request_id,
    };
    let mut response = render(&page);
    *response.status_mut() = error.status;
    response
}

/// The JSON answers of the passkey calls, which the page's script reads.
fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}
