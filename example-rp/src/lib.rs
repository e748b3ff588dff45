//! A sample OpenID Connect relying party: a small web app that signs people in with the
//! idp (authorization code flow + PKCE), verifies the ID token, calls the resource
//! server with the access token, and signs out through RP-initiated logout. When the
//! person's session at the idp ends (they sign out there, end it from their account
//! page, change their password...), the idp tells the app through OpenID Connect
//! Back-Channel Logout 1.0 and the app ends its own sessions made in it.
//!
//! ```sh
//! RP_CLIENT_ID=c_... RP_CLIENT_SECRET=... cargo run -p example-rp
//! ```
//!
//! Configuration (environment variables):
//!
//! | variable | default |
//! | --- | --- |
//! | `RP_ISSUER` | `http://localhost:3000` |
//! | `RP_CLIENT_ID` | required |
//! | `RP_CLIENT_SECRET` | unset: a public client (PKCE only) |
//! | `RP_REDIRECT_URI` | `http://127.0.0.1:8000/callback` |
//! | `RP_POST_LOGOUT_REDIRECT_URI` | `http://127.0.0.1:8000/` |
//! | `RP_LISTEN` | `127.0.0.1:8000` |
//! | `RP_RESOURCE_SERVER` | `http://localhost:4000` |
//! | `RP_SCOPES` | `openid profile email users:read` |
//!
//! Back-channel logout needs no setting: the idp posts logout tokens to
//! `/backchannel-logout` on the redirect URI's origin (the app logs the URI at start-up,
//! see [`Config::backchannel_logout_uri`]). Register it with the client:
//!
//! ```sh
//! cargo run -p idp -- clients create --name "Example RP" \
//!   --redirect-uri http://127.0.0.1:8000/callback \
//!   --post-logout-redirect-uri http://127.0.0.1:8000/ \
//!   --backchannel-logout-uri http://127.0.0.1:8000/backchannel-logout \
//!   --backchannel-logout-session-required --json
//! ```
//!
//! The idp must be able to reach that URI; without the registration everything else
//! works, and a session ended at the idp lives on here until the app signs out.

pub mod backchannel;
pub mod routes;
pub mod store;

use std::sync::Arc;

use anyhow::Context;
use openidconnect::core::{
    CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::url::Url;
use openidconnect::{
    AdditionalClaims, ClientId, ClientSecret, EndSessionUrl, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl,
    reqwest,
};
use serde::{Deserialize, Serialize};

use crate::backchannel::LogoutTokens;
use crate::store::Store;

/// What discovery gives us: authorization endpoint always; token and userinfo endpoints
/// only if the provider advertises them (openidconnect checks at use).
pub type OidcClient = CoreClient<
    EndpointSet,      // authorization
    EndpointNotSet,   // device authorization
    EndpointNotSet,   // introspection
    EndpointNotSet,   // revocation
    EndpointMaybeSet, // token
    EndpointMaybeSet, // userinfo
>;

/// The ID token claims we read beyond OIDC Core's standard ones.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SessionClaims {
    /// The provider's session the ID token was issued in: a logout token names it
    /// (Back-Channel Logout 1.0 §2.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl AdditionalClaims for SessionClaims {}

/// An ID token with [`SessionClaims`].
pub type IdToken = openidconnect::IdToken<
    SessionClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub oidc: Arc<OidcClient>,
    /// The issuer exactly as discovered: the `iss` the redirect must carry (RFC 9207).
    pub issuer: IssuerUrl,
    pub end_session: Option<EndSessionUrl>,
    pub post_logout_redirect_uri: PostLogoutRedirectUrl,
    pub resource_server: String,
    pub scopes: Vec<String>,
    pub http: reqwest::Client,
    pub store: Store,
    /// Checks the logout tokens the provider posts to `/backchannel-logout`.
    pub logout_tokens: LogoutTokens,
}

/// The app's settings, from `RP_*` environment variables (see the table above).
pub struct Config {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uri: String,
    pub post_logout_redirect_uri: String,
    pub listen: String,
    pub resource_server: String,
    pub scopes: String,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Ok(Self {
            issuer: var("RP_ISSUER", "http://localhost:3000"),
            client_id: std::env::var("RP_CLIENT_ID").context(
                "RP_CLIENT_ID is not set: register this app with \
                 `cargo run -p idp -- clients create ... --json` (see docs/example-rp.md)",
            )?,
            client_secret: std::env::var("RP_CLIENT_SECRET")
                .ok()
                .filter(|s| !s.is_empty()),
            redirect_uri: var("RP_REDIRECT_URI", "http://127.0.0.1:8000/callback"),
            post_logout_redirect_uri: var("RP_POST_LOGOUT_REDIRECT_URI", "http://127.0.0.1:8000/"),
            listen: var("RP_LISTEN", "127.0.0.1:8000"),
            resource_server: var("RP_RESOURCE_SERVER", "http://localhost:4000"),
            scopes: var("RP_SCOPES", "openid profile email users:read"),
        })
    }

    /// Where the idp should post logout tokens: the redirect URI's origin and
    /// [`routes::BACKCHANNEL_LOGOUT`], what to register as `backchannel_logout_uri`.
    pub fn backchannel_logout_uri(&self) -> anyhow::Result<String> {
        let mut url = Url::parse(&self.redirect_uri).context("RP_REDIRECT_URI is not a URL")?;
        url.set_path(routes::BACKCHANNEL_LOGOUT);
        url.set_query(None);
        url.set_fragment(None);
        Ok(url.into())
    }
}

/// Discovers the provider and builds the app's router.
pub async fn build(config: Config) -> anyhow::Result<axum::Router> {
    // Never follow redirects from the provider's back channel: it would open the door to
    // SSRF, and nothing in OIDC needs it.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .context("Failed to build the HTTP client")?;

    // Discovery: endpoints, the JWKS (fetched once here for ID tokens; restart to pick
    // up a rotated key that was not published yet; logout tokens refetch it themselves)
    // and the end_session_endpoint.
    let issuer = IssuerUrl::new(config.issuer.clone()).context("RP_ISSUER is not a URL")?;
    let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http)
        .await
        .with_context(|| {
            format!(
                "Failed to discover the provider at {}/.well-known/openid-configuration \
                 (is the idp running?)",
                config.issuer
            )
        })?;
    let end_session = metadata.additional_metadata().end_session_endpoint.clone();
    let issuer = metadata.issuer().clone();
    let logout_tokens = LogoutTokens::new(
        issuer.as_str(),
        &config.client_id,
        metadata.jwks_uri().url().clone(),
        http.clone(),
    );
    let oidc = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id),
        config.client_secret.map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(config.redirect_uri).context("RP_REDIRECT_URI")?);

    let state = AppState {
        oidc: Arc::new(oidc),
        issuer,
        end_session,
        post_logout_redirect_uri: PostLogoutRedirectUrl::new(config.post_logout_redirect_uri)
            .context("RP_POST_LOGOUT_REDIRECT_URI")?,
        resource_server: config.resource_server.trim_end_matches('/').to_owned(),
        scopes: config
            .scopes
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        http,
        store: Store::default(),
        logout_tokens,
    };
    Ok(routes::router(state))
}
