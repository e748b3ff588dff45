//! The [`ClientIp`] extractor: the requester's IP address for throttling and the audit
//! trail (see [`crate::client_ip`] for which address that is).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::startup::AppState;

/// The client's IP address; `None` when the server was not started with connection
/// info (in-process tests), which disables per-IP throttling for that request.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(Self(None));
        };
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok());
        Ok(Self(Some(
            state
                .settings
                .trusted_proxies
                .client_ip(peer.ip(), forwarded),
        )))
    }
}
