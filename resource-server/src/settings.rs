//! Settings of the resource server: defaults, overridden by an optional TOML file named
//! by `RS_CONFIG`, overridden by `RS_*` environment variables. Everything is validated
//! at start-up, with an error naming the bad setting.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use jwt_auth::events::ReceiverAuthorization;
use serde::{Deserialize, Serialize};
use service_kit::serve::ConnectionLimits;

/// Environment variable prefix of every setting (`RS_LISTEN`, `RS_ISSUER`, ...).
pub const ENV_PREFIX: &str = "RS_";
/// Environment variable naming an optional TOML settings file.
pub const CONFIG_FILE_VAR: &str = "RS_CONFIG";
/// The largest clock leeway we accept: RFC 8725 / our checklist ask for a small one.
pub const MAX_CLOCK_LEEWAY_SECS: u64 = 60;

/// Field names are the environment variable names without the `RS_` prefix, lowercased.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `RS_LISTEN`: the address to listen on.
    pub listen: String,
    /// `RS_ISSUER`: the idp this server trusts; `iss` must equal it exactly, and its
    /// discovery document names the JWKS.
    pub issuer: String,
    /// `RS_AUDIENCE`: the `aud` every access token must contain.
    pub audience: String,
    /// `RS_DATABASE_URL`: `sqlite://...` or `postgres://...`.
    pub database_url: String,
    /// `RS_DATABASE_MAX_CONNECTIONS`: size of the connection pool.
    pub database_max_connections: u32,
    /// `RS_JWKS_CACHE_SECS`: how long a fetched key set counts as fresh when the JWKS
    /// response carries no `Cache-Control: max-age`.
    pub jwks_cache_secs: u64,
    /// `RS_JWKS_MIN_CACHE_SECS`: the smallest freshness a response's `max-age` can grant
    /// (`no-cache`/`no-store` get this).
    pub jwks_min_cache_secs: u64,
    /// `RS_JWKS_MAX_CACHE_SECS`: the largest freshness a response's `max-age` can grant.
    pub jwks_max_cache_secs: u64,
    /// `RS_JWKS_REFETCH_COOLDOWN_SECS`: at most one JWKS fetch per this many seconds,
    /// whatever triggers it (stale keys, an unknown `kid`).
    pub jwks_refetch_cooldown_secs: u64,
    /// `RS_JWKS_MAX_STALE_SECS`: how long past its freshness the last good key set keeps
    /// serving while the idp cannot be reached. After that, tokens fail closed.
    pub jwks_max_stale_secs: u64,
    /// `RS_JWKS_FETCH_TIMEOUT_SECS`: timeout of each HTTP call to the idp.
    pub jwks_fetch_timeout_secs: u64,
    /// `RS_PROFILE_CACHE_CAPACITY`: how many profiles are kept in memory for reads by id.
    pub profile_cache_capacity: u64,
    /// `RS_PROFILE_CACHE_TTL_SECS`: the longest a cached profile is served. Writes
    /// invalidate it long before; this bounds a missed invalidation.
    pub profile_cache_ttl_secs: u64,
    /// `RS_CLOCK_LEEWAY_SECS`: tolerance for `exp`, `nbf` and `iat` (at most 60).
    pub clock_leeway_secs: u64,
    /// `RS_REQUEST_TIMEOUT_SECS`: requests taking longer are answered 408.
    pub request_timeout_secs: u64,
    /// `RS_HEADER_READ_TIMEOUT_SECS`: a client must send a request's headers within
    /// this long, or its connection is closed.
    pub header_read_timeout_secs: u64,
    /// `RS_MAX_CONNECTIONS`: open connections at most; more wait to be accepted. Keep
    /// it below the open-file limit (`ulimit -n`) less the database pool.
    pub max_connections: usize,
    /// `RS_DELETE_REQUIRES_ACR`: the `acr` a token must carry to delete a profile, e.g.
    /// `urn:idp:acr:mfa` (a sign-in with a second factor); others get RFC 9470's
    /// `insufficient_user_authentication`. Unset (the default): any valid token with the
    /// scope will do.
    pub delete_requires_acr: Option<String>,
    /// `RS_EVENTS_AUTHORIZATION`: the `Authorization` header value the idp must send
    /// with the security events it pushes to `POST /events` (the receiver's
    /// `authorization_header`, e.g. `Bearer <random>`). Unset (the default): no header
    /// check; the events' signature authenticates the idp either way. A secret: never
    /// printed, and never written back out.
    #[serde(skip_serializing)]
    pub events_authorization: Option<ReceiverAuthorization>,
    /// `RS_REVOCATION_RETENTION_SECS`: how long a revocation (a session that ended, a
    /// password change) is kept after the moment it names. At least the idp's longest
    /// access-token lifetime plus the clock leeway, or revoked tokens are accepted
    /// again before they expire.
    pub revocation_retention_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4000".to_owned(),
            issuer: "http://localhost:3000".to_owned(),
            audience: "http://localhost:4000".to_owned(),
            database_url: "sqlite://data/users.db".to_owned(),
            database_max_connections: 10,
            jwks_cache_secs: 300,
            jwks_min_cache_secs: 30,
            jwks_max_cache_secs: 3600,
            jwks_refetch_cooldown_secs: 30,
            jwks_max_stale_secs: 3600,
            jwks_fetch_timeout_secs: 5,
            profile_cache_capacity: 10_000,
            profile_cache_ttl_secs: 60,
            clock_leeway_secs: 30,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            max_connections: 1000,
            delete_requires_acr: None,
            events_authorization: None,
            revocation_retention_secs: jwt_auth::events::config::DEFAULT_RETENTION.as_secs(),
        }
    }
}

impl Settings {
    /// Reads defaults, then the `RS_CONFIG` file if set, then `RS_*` variables, and
    /// validates the result.
    pub fn load() -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Ok(path) = std::env::var(CONFIG_FILE_VAR) {
            if !std::path::Path::new(&path).is_file() {
                bail!("{CONFIG_FILE_VAR} names {path}, which is not a readable file");
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).ignore(&["config"]));
        Self::from_figment(&figment)
    }

    /// Extracts and validates settings from any figment (tests feed TOML strings).
    pub fn from_figment(figment: &Figment) -> anyhow::Result<Self> {
        let settings: Self = figment.extract().map_err(|e| {
            let errors: Vec<String> = e.into_iter().map(|e| describe(&e)).collect();
            anyhow::anyhow!("Invalid settings: {}", errors.join("; "))
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every setting; the error names the environment variable at fault.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen.parse::<SocketAddr>().with_context(|| {
            format!(
                "RS_LISTEN must be an IP address and port such as 127.0.0.1:4000 (got {:?})",
                self.listen
            )
        })?;
        validate_base_url("RS_ISSUER", &self.issuer)?;
        if self.audience.trim().is_empty() {
            bail!("RS_AUDIENCE must not be empty");
        }
        service_kit::db::Backend::from_url(&self.database_url)
            .context("RS_DATABASE_URL is not a database URL")?;
        at_least(
            "RS_DATABASE_MAX_CONNECTIONS",
            u64::from(self.database_max_connections),
            1,
        )?;
        at_least("RS_JWKS_MIN_CACHE_SECS", self.jwks_min_cache_secs, 1)?;
        at_least(
            "RS_JWKS_MAX_CACHE_SECS",
            self.jwks_max_cache_secs,
            self.jwks_min_cache_secs,
        )?;
        if !(self.jwks_min_cache_secs..=self.jwks_max_cache_secs).contains(&self.jwks_cache_secs) {
            bail!(
                "RS_JWKS_CACHE_SECS must be between RS_JWKS_MIN_CACHE_SECS ({}) and \
                 RS_JWKS_MAX_CACHE_SECS ({}) (got {})",
                self.jwks_min_cache_secs,
                self.jwks_max_cache_secs,
                self.jwks_cache_secs
            );
        }
        at_least(
            "RS_JWKS_REFETCH_COOLDOWN_SECS",
            self.jwks_refetch_cooldown_secs,
            1,
        )?;
        at_least(
            "RS_JWKS_FETCH_TIMEOUT_SECS",
            self.jwks_fetch_timeout_secs,
            1,
        )?;
        at_least("RS_PROFILE_CACHE_CAPACITY", self.profile_cache_capacity, 1)?;
        at_least("RS_PROFILE_CACHE_TTL_SECS", self.profile_cache_ttl_secs, 1)?;
        at_least("RS_REQUEST_TIMEOUT_SECS", self.request_timeout_secs, 1)?;
        at_least(
            "RS_HEADER_READ_TIMEOUT_SECS",
            self.header_read_timeout_secs,
            1,
        )?;
        at_least(
            "RS_MAX_CONNECTIONS",
            u64::try_from(self.max_connections).unwrap_or(u64::MAX),
            1,
        )?;
        at_least(
            "RS_REVOCATION_RETENTION_SECS",
            self.revocation_retention_secs,
            self.clock_leeway_secs,
        )?;
        if self.clock_leeway_secs > MAX_CLOCK_LEEWAY_SECS {
            bail!(
                "RS_CLOCK_LEEWAY_SECS must be at most {MAX_CLOCK_LEEWAY_SECS} (got {})",
                self.clock_leeway_secs
            );
        }
        Ok(())
    }

    pub fn jwks_cache(&self) -> Duration {
        Duration::from_secs(self.jwks_cache_secs)
    }

    pub fn jwks_min_cache(&self) -> Duration {
        Duration::from_secs(self.jwks_min_cache_secs)
    }

    pub fn jwks_max_cache(&self) -> Duration {
        Duration::from_secs(self.jwks_max_cache_secs)
    }

    pub fn jwks_refetch_cooldown(&self) -> Duration {
        Duration::from_secs(self.jwks_refetch_cooldown_secs)
    }

    pub fn jwks_max_stale(&self) -> Duration {
        Duration::from_secs(self.jwks_max_stale_secs)
    }

    pub fn jwks_fetch_timeout(&self) -> Duration {
        Duration::from_secs(self.jwks_fetch_timeout_secs)
    }

    pub fn profile_cache_ttl(&self) -> Duration {
        Duration::from_secs(self.profile_cache_ttl_secs)
    }

    pub fn revocation_retention(&self) -> Duration {
        Duration::from_secs(self.revocation_retention_secs)
    }

    pub fn clock_leeway(&self) -> Duration {
        Duration::from_secs(self.clock_leeway_secs)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            max_connections: self.max_connections,
        }
    }
}

/// figment's message with the key spelled as the environment variable.
fn describe(error: &figment::Error) -> String {
    if let figment::error::Kind::UnknownField(name, _) = &error.kind {
        return format!(
            "{ENV_PREFIX}{} ({name}) is not a setting",
            name.to_uppercase()
        );
    }
    match error.path.last() {
        Some(key) => format!("{ENV_PREFIX}{}: {}", key.to_uppercase(), error.kind),
        None => error.kind.to_string(),
    }
}

fn at_least(name: &str, value: u64, min: u64) -> anyhow::Result<()> {
    if value < min {
        bail!("{name} must be at least {min} (got {value})");
    }
    Ok(())
}

/// An absolute http(s) URL without query or fragment.
fn validate_base_url(name: &str, value: &str) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(value)
        .with_context(|| format!("{name} must be an absolute http(s) URL (got {value:?})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("{name} must be an absolute http(s) URL (got {value:?})");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("{name} must not have a query or fragment (got {value:?})");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn from_toml(toml: &str) -> anyhow::Result<Settings> {
        Settings::from_figment(
            &Figment::from(Serialized::defaults(Settings::default())).merge(Toml::string(toml)),
        )
    }

    #[test]
    fn the_defaults_are_valid() {
        assert!(Settings::default().validate().is_ok());
    }

    #[test]
    fn a_file_overrides_the_defaults() {
        let settings = from_toml("issuer = \"https://idp.example\"\njwks_cache_secs = 60").unwrap();
        assert_eq!(settings.issuer, "https://idp.example");
        assert_eq!(settings.jwks_cache_secs, 60);
        assert_eq!(settings.audience, "http://localhost:4000");
    }

    #[test]
    fn errors_name_the_bad_setting() {
        let message = |toml: &str| from_toml(toml).err().map(|e| format!("{e:#}"));
        assert!(
            message("clock_leeway_secs = 61").is_some_and(|m| m.contains("RS_CLOCK_LEEWAY_SECS"))
        );
        assert!(
            message("clock_leeway_secs = \"x\"")
                .is_some_and(|m| m.contains("RS_CLOCK_LEEWAY_SECS"))
        );
        assert!(message("issuer = \"ftp://idp\"").is_some_and(|m| m.contains("RS_ISSUER")));
        assert!(message("issuer = \"http://idp/?a=b\"").is_some_and(|m| m.contains("RS_ISSUER")));
        assert!(message("listen = \"localhost\"").is_some_and(|m| m.contains("RS_LISTEN")));
        assert!(
            message("database_url = \"mysql://x\"").is_some_and(|m| m.contains("RS_DATABASE_URL"))
        );
        assert!(message("audience = \" \"").is_some_and(|m| m.contains("RS_AUDIENCE")));
        assert!(message("jwks_cache_secs = 0").is_some_and(|m| m.contains("RS_JWKS_CACHE_SECS")));
        assert!(
            message("jwks_min_cache_secs = 0")
                .is_some_and(|m| m.contains("RS_JWKS_MIN_CACHE_SECS"))
        );
        assert!(
            message("jwks_min_cache_secs = 100\njwks_max_cache_secs = 50")
                .is_some_and(|m| m.contains("RS_JWKS_MAX_CACHE_SECS"))
        );
        assert!(
            message("jwks_cache_secs = 7200").is_some_and(|m| m.contains("RS_JWKS_CACHE_SECS"))
        );
        assert!(
            message("profile_cache_capacity = 0")
                .is_some_and(|m| m.contains("RS_PROFILE_CACHE_CAPACITY"))
        );
        assert!(
            message("profile_cache_ttl_secs = 0")
                .is_some_and(|m| m.contains("RS_PROFILE_CACHE_TTL_SECS"))
        );
        assert!(message("no_such_setting = 1").is_some_and(|m| m.contains("no_such_setting")));
        assert!(
            message("events_authorization = \"\"")
                .is_some_and(|m| m.contains("RS_EVENTS_AUTHORIZATION"))
        );
        assert!(
            message("revocation_retention_secs = 0")
                .is_some_and(|m| m.contains("RS_REVOCATION_RETENTION_SECS"))
        );
    }

    #[test]
    fn the_events_authorization_is_never_shown() {
        let settings = from_toml("events_authorization = \"Bearer s3cret\"").unwrap();
        assert!(settings.events_authorization.is_some());
        assert!(!format!("{settings:?}").contains("s3cret"));
        assert!(!serde_json::to_string(&settings).unwrap().contains("s3cret"));
    }
}
