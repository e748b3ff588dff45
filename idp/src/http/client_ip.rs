//! The [`ClientIp`] extractor: the requester's IP address for throttling and the audit
//! trail (see [`crate::guards::client_ip`] for which address that is).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::http::config::HttpConfig;

/// The client's IP address; `None` when the server was not started with connection
/// info (in-process tests), which disables per-IP throttling for that request.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    Arc<HttpConfig>: FromRef<S>,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(Self(None));
        };
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok());
        Ok(Self(Some(
            Arc::<HttpConfig>::from_ref(state)
                .trusted_proxies
                .client_ip(peer.ip(), forwarded),
        )))
    }
}
