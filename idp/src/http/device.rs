//! The [`Device`] of the current request, from its User-Agent header.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::sessions::device::Device;

impl<S: Send + Sync> FromRequestParts<S> for Device {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Lossy: a user agent with bytes beyond visible ASCII is still worth showing.
        let agent = parts
            .headers
            .get(header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()));
        Ok(Self::from_user_agent(agent.as_deref()))
    }
}
