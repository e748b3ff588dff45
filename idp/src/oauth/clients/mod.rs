//! The client registry: registering, listing and deleting OAuth clients, and
//! authenticating them at the token, revocation and introspection endpoints.

pub mod model;
pub mod store;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use service_kit::clock::Clock;
use sqlx::AnyPool;

use crate::guards::audit::{Audit, Event, Outcome, events};
use crate::guards::secrets::{self, Secret};
use crate::guards::throttle::{Key, Throttle};
use crate::oauth::Scope;
pub use model::{
    AuthMethod, BackchannelLogout, Client, ClientId, ClientType, ConsentPolicy, GrantType,
    PkcePolicy, RedirectUri,
};

/// How long a client read for authentication is reused. Clients never change once
/// registered; they can only be deleted (by `idp clients delete`, another process), and
/// a deleted client can get tokens from a running instance for at most this long. Its
/// access tokens already outlive it by up to their lifetime at resource servers, which
/// validate offline.
pub const AUTHENTICATION_CACHE_TTL: Duration = Duration::from_secs(5);
/// Clients remembered for authentication at most.
const AUTHENTICATION_CACHE_CAPACITY: u64 = 10_000;
/// An address found not throttled is not looked up again for this long (by the
/// injected clock): a lock made on another instance, or by failed password sign-ins,
/// reaches client authentication here at most this late. Client secrets are 256 random
/// bits, so the throttle is about load, not guessing. Failures seen here take effect
/// at once.
pub const UNTHROTTLED_RECHECK_MILLIS: i64 = 1_000;
/// Addresses remembered as not throttled at most.
const UNTHROTTLED_CACHE_CAPACITY: u64 = 10_000;

/// Scopes a new client may ask for unless told otherwise.
pub const DEFAULT_SCOPE: &str = "openid profile email users:read users:write";

/// Everything needed to register a client; see [`Clients::create`] for the rules.
pub struct NewClient {
    pub name: String,
    pub client_type: ClientType,
    pub auth_method: Option<AuthMethod>,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub allowed_scope: Scope,
    pub grant_types: Vec<GrantType>,
    pub consent: ConsentPolicy,
    pub pkce: PkcePolicy,
    /// Sign-ins for this client need a second factor.
    pub require_mfa: bool,
    /// Checked with [`BackchannelLogout::parse`] against the redirect URIs.
    pub backchannel_logout: Option<BackchannelLogout>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateClientError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Credentials as presented at an endpoint, before checking them.
pub enum PresentedCredentials {
    /// `Authorization: Basic` (RFC 6749 §2.3.1, form-urlencoded before base64).
    Basic { client_id: String, secret: Secret },
    /// `client_id` and `client_secret` in the form body.
    Post { client_id: String, secret: Secret },
    /// Only `client_id`: a public client.
    None { client_id: String },
}

impl PresentedCredentials {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::None { client_id } => client_id,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// Unknown client, wrong secret or a method other than the registered one.
    #[error("client authentication failed")]
    Failed,
    /// Too many failures from this IP address: retry after this many seconds.
    #[error("too many failed client authentications")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Clone)]
pub struct Clients {
    pool: AnyPool,
    clock: Clock,
    audit: Audit,
    /// Throttles failed authentications per IP address; `None` outside a server (CLI).
    throttle: Option<Throttle>,
    /// Registered clients with their secret hashes, by id, for [`AUTHENTICATION_CACHE_TTL`]:
    /// a service calling `/token` all day needs its client read once, not per token.
    /// Unknown ids are never remembered, so a client is usable as soon as it is created.
    registered: moka::sync::Cache<String, Arc<(Client, Option<String>)>>,
    /// Addresses found not throttled, with when (clock milliseconds).
    unthrottled: moka::sync::Cache<IpAddr, i64>,
}

impl Clients {
    pub fn new(pool: AnyPool, clock: Clock) -> Self {
        Self {
            audit: Audit::new(pool.clone(), clock.clone()),
            pool,
            clock,
            throttle: None,
            registered: moka::sync::Cache::builder()
                .max_capacity(AUTHENTICATION_CACHE_CAPACITY)
                .time_to_live(AUTHENTICATION_CACHE_TTL)
                .build(),
            unthrottled: moka::sync::Cache::builder()
                .max_capacity(UNTHROTTLED_CACHE_CAPACITY)
                .time_to_live(Duration::from_secs(10))
                .build(),
        }
    }

    /// Throttles failed authentications per IP address with `throttle`'s IP policy
    /// (shared with password sign-ins: one attacker, one budget). Not per client: a
    /// secret is 256 random bits, and a lock per client would let anyone who knows a
    /// client id lock that client out.
    pub fn with_throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// Registers a client. Confidential clients get a secret (returned once, stored
    /// hashed) and `client_secret_basic` unless told otherwise; public clients
    /// authenticate with `none`, always need PKCE and may not use `client_credentials`.
    pub async fn create(
        &self,
        new: NewClient,
    ) -> Result<(Client, Option<Secret>), CreateClientError> {
        use CreateClientError::Invalid;
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Invalid("the name must be 1 to 100 characters"));
        }
        if new.grant_types.is_empty() {
            return Err(Invalid("at least one grant type is needed"));
        }
        if new.grant_types.contains(&GrantType::AuthorizationCode) && new.redirect_uris.is_empty() {
            return Err(Invalid(
                "the authorization_code grant needs at least one redirect URI",
            ));
        }
        let auth_method = match (new.client_type, new.auth_method) {
            (ClientType::Public, None | Some(AuthMethod::None)) => AuthMethod::None,
            (ClientType::Public, Some(_)) => {
                return Err(Invalid(
                    "public clients have no secret: their auth method is none",
                ));
            }
            (ClientType::Confidential, None) => AuthMethod::ClientSecretBasic,
            (ClientType::Confidential, Some(AuthMethod::None)) => {
                return Err(Invalid("confidential clients authenticate with a secret"));
            }
            (ClientType::Confidential, Some(method)) => method,
        };
        if new.client_type == ClientType::Public {
            if new.grant_types.contains(&GrantType::ClientCredentials) {
                return Err(Invalid("public clients cannot use client_credentials"));
            }
            if new.pkce == PkcePolicy::Optional {
                return Err(Invalid("public clients always need PKCE"));
            }
        }
        let mut grant_types = new.grant_types;
        grant_types.sort_unstable();
        grant_types.dedup();
        let client = Client {
            id: ClientId::generate(),
            name,
            client_type: new.client_type,
            auth_method,
            redirect_uris: new.redirect_uris,
            post_logout_redirect_uris: new.post_logout_redirect_uris,
            allowed_scope: new.allowed_scope,
            grant_types,
            consent: new.consent,
            pkce: new.pkce,
            require_mfa: new.require_mfa,
            backchannel_logout: new.backchannel_logout,
            created_at: self.clock.now().timestamp(),
        };
        let secret = (client.client_type == ClientType::Confidential).then(Secret::generate);
        store::insert(
            &self.pool,
            &client,
            secret.as_ref().map(Secret::hash).as_deref(),
        )
        .await?;
        tracing::info!(client_id = %client.id, client_type = client.client_type.as_str(), "Client registered");
        self.audit
            .record(
                Event::new(events::CLIENT_CREATED, Outcome::Success)
                    .client(Some(client.id.as_ref()))
                    .detail(client.client_type.as_str()),
            )
            .await;
        Ok((client, secret))
    }

    pub async fn find(&self, client_id: &str) -> anyhow::Result<Option<Client>> {
        Ok(store::find(&self.pool, client_id)
            .await?
            .map(|(client, _)| client))
    }

    pub async fn list(&self) -> anyhow::Result<Vec<Client>> {
        store::list(&self.pool).await
    }

    pub async fn delete(&self, client_id: &str) -> anyhow::Result<bool> {
        let deleted = store::delete(&self.pool, client_id).await?;
        self.registered.invalidate(client_id);
        if deleted {
            tracing::info!(client_id, "Client deleted");
            self.audit
                .record(
                    Event::new(events::CLIENT_DELETED, Outcome::Success).client(Some(client_id)),
                )
                .await;
        }
        Ok(deleted)
    }

    /// Checks presented credentials: the client exists, uses its registered method, and
    /// (for confidential clients) the secret matches, compared in constant time.
    /// Failures count against the IP address; one over the limit gets
    /// [`ClientAuthError::Throttled`] before any check.
    pub async fn authenticate(
        &self,
        presented: &PresentedCredentials,
        ip: Option<IpAddr>,
    ) -> Result<Client, ClientAuthError> {
        if let (Some(throttle), Some(ip)) = (&self.throttle, ip)
            && !self.recently_unthrottled(ip)
        {
            if let Some(retry_after_secs) = throttle.locked(Key::Ip(ip)).await? {
                self.audit
                    .record(
                        Event::new(events::CLIENT_AUTHENTICATION, Outcome::Throttled).ip(Some(ip)),
                    )
                    .await;
                return Err(ClientAuthError::Throttled { retry_after_secs });
            }
            self.unthrottled
                .insert(ip, self.clock.now().timestamp_millis());
        }
        match self.check(presented).await? {
            Ok(client) => Ok(client),
            Err(known) => {
                // An unknown client id is not recorded: it is whatever was typed.
                self.audit
                    .record(
                        Event::new(events::CLIENT_AUTHENTICATION, Outcome::Failure)
                            .client(known.as_deref())
                            .ip(ip),
                    )
                    .await;
                if let (Some(throttle), Some(ip)) = (&self.throttle, ip) {
                    self.unthrottled.invalidate(&ip);
                    let policy = &throttle.policies().ip;
                    if let Some(lock) = throttle.fail(Key::Ip(ip), policy).await? {
                        let detail = format!("throttled for {lock} s");
                        self.audit
                            .record(
                                Event::new(events::IP_THROTTLED, Outcome::Throttled)
                                    .ip(Some(ip))
                                    .detail(&detail),
                            )
                            .await;
                    }
                }
                Err(ClientAuthError::Failed)
            }
        }
    }

    /// Whether `ip` was found not throttled within [`UNTHROTTLED_RECHECK_MILLIS`].
    fn recently_unthrottled(&self, ip: IpAddr) -> bool {
        let now = self.clock.now().timestamp_millis();
        self.unthrottled
            .get(&ip)
            .is_some_and(|checked| (0..UNTHROTTLED_RECHECK_MILLIS).contains(&(now - checked)))
    }

    /// The client `client_id` and its secret hash, from the cache or the database.
    async fn registered_client(
        &self,
        client_id: &str,
    ) -> anyhow::Result<Option<Arc<(Client, Option<String>)>>> {
        if let Some(known) = self.registered.get(client_id) {
            return Ok(Some(known));
        }
        let Some(found) = store::find(&self.pool, client_id).await? else {
            return Ok(None);
        };
        let found = Arc::new(found);
        self.registered
            .insert(client_id.to_owned(), Arc::clone(&found));
        Ok(Some(found))
    }

    /// The client if the credentials are right; otherwise the id of the client if it
    /// exists.
    async fn check(
        &self,
        presented: &PresentedCredentials,
    ) -> anyhow::Result<Result<Client, Option<String>>> {
        let Some(registered) = self.registered_client(presented.client_id()).await? else {
            return Ok(Err(None));
        };
        let (client, stored_hash) = registered.as_ref();
        let authenticated = match (presented, client.auth_method, stored_hash.as_deref()) {
            (
                PresentedCredentials::Basic { secret, .. },
                AuthMethod::ClientSecretBasic,
                Some(hash),
            )
            | (
                PresentedCredentials::Post { secret, .. },
                AuthMethod::ClientSecretPost,
                Some(hash),
            ) => secrets::matches(secret.expose(), hash),
            (PresentedCredentials::None { .. }, AuthMethod::None, _) => true,
            _ => false,
        };
        if authenticated {
            Ok(Ok(client.clone()))
        } else {
            tracing::info!(client_id = %client.id, outcome = "failure", "Client authentication refused");
            Ok(Err(Some(client.id.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use service_kit::db::Database;

    use crate::guards::throttle::{Policies, STRICT};

    use super::*;

    async fn clients() -> (Clients, Clients, service_kit::testing::TestDatabase) {
        let test_db = service_kit::testing::fresh_database("idp_clients").await;
        let db = Database::connect(&test_db.url, 2).await.unwrap();
        db.migrate(&crate::storage::MIGRATIONS).await.unwrap();
        // Two instances on one database: a server and, say, the CLI.
        let server = Clients::new(db.pool.clone(), Clock::system());
        let other = Clients::new(db.pool.clone(), Clock::system());
        (server, other, test_db)
    }

    /// A server throttled by [`STRICT`], and another throttle on its database and clock
    /// (another instance, or the password sign-ins).
    async fn throttled_clients() -> (Clients, Throttle, Clock, service_kit::testing::TestDatabase) {
        let test_db = service_kit::testing::fresh_database("idp_clients").await;
        let db = Database::connect(&test_db.url, 2).await.unwrap();
        db.migrate(&crate::storage::MIGRATIONS).await.unwrap();
        let clock = Clock::system();
        let policies = Policies::uniform(STRICT);
        let throttle = || Throttle::new(db.pool.clone(), clock.clone(), policies.clone());
        let server = Clients::new(db.pool.clone(), clock.clone()).with_throttle(throttle());
        (server, throttle(), clock, test_db)
    }

    fn service_client() -> NewClient {
        NewClient {
            name: "service".to_owned(),
            client_type: ClientType::Confidential,
            auth_method: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            allowed_scope: Scope::parse("users:read").unwrap(),
            grant_types: vec![GrantType::ClientCredentials],
            consent: ConsentPolicy::Ask,
            pkce: PkcePolicy::Required,
            require_mfa: false,
            backchannel_logout: None,
        }
    }

    fn basic(client: &Client, secret: &str) -> PresentedCredentials {
        PresentedCredentials::Basic {
            client_id: client.id.to_string(),
            secret: Secret::from_presented(secret.to_owned()),
        }
    }

    #[tokio::test]
    async fn remembered_clients_still_need_the_right_secret_and_forget_deletion_here_at_once() {
        let (server, _, _db) = clients().await;
        let (client, secret) = server.create(service_client()).await.unwrap();
        let secret = secret.unwrap();
        assert!(
            server
                .authenticate(&basic(&client, secret.expose()), None)
                .await
                .is_ok()
        );
        assert!(matches!(
            server.authenticate(&basic(&client, "wrong"), None).await,
            Err(ClientAuthError::Failed)
        ));
        assert!(server.delete(client.id.as_ref()).await.unwrap());
        assert!(matches!(
            server
                .authenticate(&basic(&client, secret.expose()), None)
                .await,
            Err(ClientAuthError::Failed)
        ));
    }

    #[tokio::test]
    async fn an_address_throttled_elsewhere_is_refused_here_within_a_second() {
        let (server, elsewhere, clock, _db) = throttled_clients().await;
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let (client, secret) = server.create(service_client()).await.unwrap();
        let right = basic(&client, secret.unwrap().expose());
        assert!(server.authenticate(&right, Some(ip)).await.is_ok());

        // Failed password sign-ins from that address lock it (through another path).
        for _ in 0..2 {
            elsewhere.fail(Key::Ip(ip), &STRICT).await.unwrap();
        }
        clock.shift(chrono::Duration::milliseconds(UNTHROTTLED_RECHECK_MILLIS));
        assert!(matches!(
            server.authenticate(&right, Some(ip)).await,
            Err(ClientAuthError::Throttled { .. })
        ));
    }

    #[tokio::test]
    async fn client_authentication_failures_here_count_at_once() {
        let (server, _, _, _db) = throttled_clients().await;
        let ip: IpAddr = "192.0.2.8".parse().unwrap();
        let (client, secret) = server.create(service_client()).await.unwrap();
        let right = basic(&client, secret.unwrap().expose());
        assert!(server.authenticate(&right, Some(ip)).await.is_ok());
        for _ in 0..2 {
            assert!(matches!(
                server
                    .authenticate(&basic(&client, "wrong"), Some(ip))
                    .await,
                Err(ClientAuthError::Failed)
            ));
        }
        // No clock shift: the failures were seen here.
        assert!(matches!(
            server.authenticate(&right, Some(ip)).await,
            Err(ClientAuthError::Throttled { .. })
        ));
    }

    #[tokio::test]
    async fn a_client_deleted_elsewhere_stops_authenticating_within_the_cache_lifetime() {
        let (server, cli, _db) = clients().await;
        // Created elsewhere: usable here at once.
        let (client, secret) = cli.create(service_client()).await.unwrap();
        let secret = secret.unwrap();
        assert!(
            server
                .authenticate(&basic(&client, secret.expose()), None)
                .await
                .is_ok()
        );
        assert!(cli.delete(client.id.as_ref()).await.unwrap());
        tokio::time::sleep(AUTHENTICATION_CACHE_TTL + Duration::from_millis(500)).await;
        assert!(matches!(
            server
                .authenticate(&basic(&client, secret.expose()), None)
                .await,
            Err(ClientAuthError::Failed)
        ));
    }
}
