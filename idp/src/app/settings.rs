//! The idp's configuration: environment variables prefixed `IDP_`, optionally a TOML
//! file named by `IDP_CONFIG` (environment wins). Defaults make `cargo run` work on a
//! fresh machine; [`Settings::validate`] rejects bad values at start-up, naming them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use lettre::message::Mailbox;
use serde::Deserialize;
use service_kit::serve::ConnectionLimits;

use crate::events::EventsConfig;
use crate::factors::FactorPolicy;
use crate::guards::client_ip::TrustedProxies;
use crate::guards::throttle::{Policies, Policy, Rate};
use crate::http::browser_session::BrowserSessionConfig;
use crate::http::config::HttpConfig;
use crate::http::endpoints;
use crate::keys::lifecycle::KeySchedule;
use crate::mail::{MailConfig, TransportConfig};
use crate::oauth::grants::TokenPolicy;
use crate::sessions::records::SessionPolicy;
use webauthn_rs::WebauthnBuilder;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `IDP_LISTEN`: address to listen on.
    pub listen: String,
    /// `IDP_ISSUER`: the `iss` of every token and the base of discovery.
    pub issuer: String,
    /// `IDP_DATABASE_URL`: `sqlite://...` or `postgres://...`.
    pub database_url: String,
    /// `IDP_DATABASE_MAX_CONNECTIONS`.
    pub database_max_connections: u32,
    /// `IDP_KEYS_DIR`: where the embedded default keeps its key-encryption key.
    pub keys_dir: PathBuf,
    /// `IDP_KEY_ENCRYPTION_KEY`: base64 of 32 random bytes. When set, it encrypts the
    /// signing keys at rest instead of the file under `keys_dir`; every instance sharing
    /// one database must use the same value.
    pub key_encryption_key: Option<KeyEncryptionKeySetting>,
    /// `IDP_AUDIENCE`: `aud` of access tokens from first-party login.
    pub audience: String,
    /// `IDP_ACCESS_TOKEN_TTL_SECS`: lifetime of access tokens.
    pub access_token_ttl_secs: u64,
    /// `IDP_MAX_CONCURRENT_HASHES`: password hashes computed at once; more wait.
    /// Each Argon2id hash needs 19 MiB of working memory, kept for reuse, so this also
    /// bounds that memory. Default: the number of CPU cores (more would only queue on
    /// the cores and add 19 MiB each).
    pub max_concurrent_hashes: usize,
    /// `IDP_REQUEST_TIMEOUT_SECS`.
    pub request_timeout_secs: u64,
    /// `IDP_HEADER_READ_TIMEOUT_SECS`: a client must send a request's headers within
    /// this long, or its connection is closed (a slow-headers client holds nothing).
    pub header_read_timeout_secs: u64,
    /// `IDP_MAX_CONNECTIONS`: open connections at most; more wait to be accepted. Keep
    /// it below the open-file limit (`ulimit -n`) less the database pool.
    pub max_connections: usize,
    /// `IDP_AUTHORIZATION_CODE_TTL_SECS`: life of an authorization code.
    pub authorization_code_ttl_secs: u64,
    /// `IDP_ID_TOKEN_TTL_SECS`: life of an ID token.
    pub id_token_ttl_secs: u64,
    /// `IDP_REFRESH_TOKEN_IDLE_TTL_SECS`: a refresh token unused this long expires.
    pub refresh_token_idle_ttl_secs: u64,
    /// `IDP_REFRESH_TOKEN_ABSOLUTE_TTL_SECS`: a grant's refresh tokens end this long
    /// after sign-in, however often they are used.
    pub refresh_token_absolute_ttl_secs: u64,
    /// `IDP_SESSION_IDLE_TIMEOUT_SECS`: a sign-in session (browser or JSON API)
    /// unused this long ends.
    pub session_idle_timeout_secs: u64,
    /// `IDP_SESSION_LIFETIME_SECS`: a sign-in session ends this long after it began,
    /// however active.
    pub session_lifetime_secs: u64,
    /// `IDP_MAX_SESSIONS_PER_USER`: live sessions a user may have; one more ends the
    /// oldest.
    pub max_sessions_per_user: usize,
    /// `IDP_KEY_ROTATION_PERIOD_SECS`: how long a key signs before the next one takes
    /// over.
    pub key_rotation_period_secs: u64,
    /// `IDP_KEY_PREPUBLICATION_SECS`: how long a new key is published before it signs.
    /// Unset: `IDP_JWKS_MAX_AGE_SECS + IDP_CLOCK_SKEW_SECS + IDP_KEY_CHECK_INTERVAL_SECS`,
    /// also the least it may be.
    pub key_prepublication_secs: Option<u64>,
    /// `IDP_JWKS_MAX_AGE_SECS`: `Cache-Control: max-age` of `GET /jwks`.
    pub jwks_max_age_secs: u64,
    /// `IDP_CLOCK_SKEW_SECS`: how far clocks of the idp instances and resource servers
    /// may disagree; added to every key-lifecycle margin.
    pub clock_skew_secs: u64,
    /// `IDP_KEY_CHECK_INTERVAL_SECS`: how often each instance applies due key
    /// transitions and reloads the keys from the database.
    pub key_check_interval_secs: u64,
    /// `IDP_LOGIN_MAX_FAILURES_PER_ACCOUNT`: failed sign-ins to one email within
    /// `IDP_LOGIN_FAILURE_WINDOW_SECS` before it is locked (answering like a wrong
    /// password).
    pub login_max_failures_per_account: u32,
    /// `IDP_LOGIN_MAX_FAILURES_PER_IP`: failed sign-ins and client authentications from
    /// one IP address within the window before it gets 429s.
    pub login_max_failures_per_ip: u32,
    /// `IDP_LOGIN_FAILURE_WINDOW_SECS`: the window failures are counted in.
    pub login_failure_window_secs: u64,
    /// `IDP_LOGIN_LOCK_SECS`: the first lock; each further failure doubles it.
    pub login_lock_secs: u64,
    /// `IDP_LOGIN_MAX_LOCK_SECS`: the longest lock (never permanent).
    pub login_max_lock_secs: u64,
    /// `IDP_REGISTRATION_ACCOUNTS_PER_HOUR`: accounts one IP address may create per hour,
    /// sustained.
    pub registration_accounts_per_hour: u32,
    /// `IDP_REGISTRATION_ACCOUNTS_BURST`: accounts one IP address may create at once.
    pub registration_accounts_burst: u32,
    /// `IDP_REGISTRATION_MAX_FAILURES_PER_IP`: failed registrations (malformed input, a
    /// taken email) from one IP address per `IDP_REGISTRATION_WINDOW_SECS`.
    pub registration_max_failures_per_ip: u32,
    /// `IDP_REGISTRATION_WINDOW_SECS`.
    pub registration_window_secs: u64,
    /// `IDP_TRUSTED_PROXIES`: IP addresses of reverse proxies whose `X-Forwarded-For`
    /// is believed (comma-separated); empty: the peer address is the client's.
    pub trusted_proxies: TrustedProxies,
    /// `IDP_SMTP_URL`: where mail goes, e.g. `smtp://localhost:25`,
    /// `smtp://user:password@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:password@host:465`; unset: `.eml` files in `IDP_MAIL_DIR`.
    pub smtp_url: Option<SmtpUrlSetting>,
    /// `IDP_MAIL_FROM`: the sender, e.g. `Example ID <id@example.com>`; default
    /// `no-reply@` the issuer's host.
    pub mail_from: Option<String>,
    /// `IDP_SMTP_TIMEOUT_SECS`: the longest one delivery may take over SMTP, connecting
    /// included; a slower one counts as a failed attempt.
    pub smtp_timeout_secs: u64,
    /// `IDP_MAIL_DIR`: the local mailbox used when no SMTP URL is set.
    pub mail_dir: PathBuf,
    /// `IDP_MAIL_MAX_ATTEMPTS`: delivery attempts before a message is a dead letter.
    pub mail_max_attempts: u32,
    /// `IDP_PASSWORD_RESET_TTL_SECS`: how long a password reset link works.
    pub password_reset_ttl_secs: i64,
    /// `IDP_EMAIL_VERIFICATION_TTL_SECS`: how long an email verification link works.
    pub email_verification_ttl_secs: i64,
    /// `IDP_REQUIRE_VERIFIED_EMAIL`: only accounts whose address is verified may sign in
    /// (others are mailed a new link instead); default: everyone may, and the account
    /// page asks for verification.
    pub require_verified_email: bool,
    /// `IDP_REQUIRE_MFA`: every client, as if registered with `--require-mfa`, gets
    /// codes only for sign-ins with a second factor. The idp's own pages and JSON API
    /// still sign in with the password alone, so people can add one.
    pub require_mfa: bool,
    /// `IDP_MAIL_POLL_SECS`: how often the sender looks for due mail (retries, mail
    /// queued by other instances); mail queued here is sent at once.
    pub mail_poll_secs: u64,
    /// `IDP_EVENTS_MAX_ATTEMPTS`: tries of one security event (or logout token) before
    /// it is a dead letter for `idp streams retry`; retries wait 5 s, doubling to 10 min.
    pub events_max_attempts: u32,
    /// `IDP_EVENTS_POLL_SECS`: how often the delivery task looks for due events
    /// (retries, events queued by other instances); events queued here go at once.
    pub events_poll_secs: u64,
    /// `IDP_EVENTS_TIMEOUT_SECS`: the longest one push to a receiver may take.
    pub events_timeout_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3000".to_owned(),
            issuer: "http://localhost:3000".to_owned(),
            database_url: "sqlite://data/idp.db".to_owned(),
            database_max_connections: 10,
            keys_dir: PathBuf::from("keys"),
            key_encryption_key: None,
            audience: "http://localhost:4000".to_owned(),
            access_token_ttl_secs: 900,
            max_concurrent_hashes: default_concurrent_hashes(),
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            max_connections: 1000,
            authorization_code_ttl_secs: 60,
            id_token_ttl_secs: 3600,
            refresh_token_idle_ttl_secs: 14 * 86_400,
            refresh_token_absolute_ttl_secs: 90 * 86_400,
            session_idle_timeout_secs: 8 * 3600,
            session_lifetime_secs: 7 * 86_400,
            max_sessions_per_user: 10,
            key_rotation_period_secs: 30 * 86_400,
            key_prepublication_secs: None,
            jwks_max_age_secs: 300,
            clock_skew_secs: 60,
            key_check_interval_secs: 5,
            login_max_failures_per_account: 5,
            login_max_failures_per_ip: 20,
            login_failure_window_secs: 900,
            login_lock_secs: 60,
            login_max_lock_secs: 900,
            registration_accounts_per_hour: 10,
            registration_accounts_burst: 20,
            registration_max_failures_per_ip: 30,
            registration_window_secs: 3600,
            trusted_proxies: TrustedProxies::default(),
            smtp_url: None,
            mail_from: None,
            smtp_timeout_secs: 30,
            mail_dir: PathBuf::from("data/mail"),
            mail_max_attempts: 8,
            mail_poll_secs: 10,
            password_reset_ttl_secs: 1800,
            email_verification_ttl_secs: 86_400,
            require_verified_email: false,
            require_mfa: false,
            events_max_attempts: 20,
            events_poll_secs: 5,
            events_timeout_secs: 5,
        }
    }
}

/// One Argon2id hash per core: a hash keeps its core busy for its whole duration, so
/// more at once only take longer each and hold more memory.
fn default_concurrent_hashes() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .min(256)
}

/// The SMTP URL as configured; never printed (it may hold a password).
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SmtpUrlSetting(pub String);

impl fmt::Debug for SmtpUrlSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The key-encryption key as configured; never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct KeyEncryptionKeySetting(pub String);

impl fmt::Debug for KeyEncryptionKeySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Settings {
    /// Reads the environment (and `IDP_CONFIG`'s TOML file, if named) and validates.
    pub fn load() -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Ok(path) = std::env::var("IDP_CONFIG") {
            figment = figment.merge(Toml::file_exact(path));
        }
        let settings: Self = figment
            .merge(Env::prefixed("IDP_").ignore(&["CONFIG"]))
            .extract()
            .context("Invalid idp settings")?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        validate_issuer(&self.issuer).context("IDP_ISSUER")?;
        self.mail_config()?;
        self.events_config()?;
        ensure!(
            (300..=86_400).contains(&self.password_reset_ttl_secs),
            "IDP_PASSWORD_RESET_TTL_SECS must be between 300 and 86400"
        );
        ensure!(
            (3600..=604_800).contains(&self.email_verification_ttl_secs),
            "IDP_EMAIL_VERIFICATION_TTL_SECS must be between 3600 and 604800"
        );
        ensure!(
            !self.audience.trim().is_empty(),
            "IDP_AUDIENCE must not be empty"
        );
        ensure!(
            (60..=86_400).contains(&self.access_token_ttl_secs),
            "IDP_ACCESS_TOKEN_TTL_SECS must be between 60 and 86400"
        );
        ensure!(
            (1..=256).contains(&self.max_concurrent_hashes),
            "IDP_MAX_CONCURRENT_HASHES must be between 1 and 256"
        );
        ensure!(
            self.database_max_connections >= 1,
            "IDP_DATABASE_MAX_CONNECTIONS must be at least 1"
        );
        ensure!(
            (1..=600).contains(&self.request_timeout_secs),
            "IDP_REQUEST_TIMEOUT_SECS must be between 1 and 600"
        );
        ensure!(
            (1..=300).contains(&self.header_read_timeout_secs),
            "IDP_HEADER_READ_TIMEOUT_SECS must be between 1 and 300"
        );
        ensure!(
            (1..=1_000_000).contains(&self.max_connections),
            "IDP_MAX_CONNECTIONS must be between 1 and 1000000"
        );
        ensure!(
            (10..=600).contains(&self.authorization_code_ttl_secs),
            "IDP_AUTHORIZATION_CODE_TTL_SECS must be between 10 and 600"
        );
        ensure!(
            (60..=86_400).contains(&self.id_token_ttl_secs),
            "IDP_ID_TOKEN_TTL_SECS must be between 60 and 86400"
        );
        ensure!(
            self.refresh_token_idle_ttl_secs >= 60
                && self.refresh_token_idle_ttl_secs <= self.refresh_token_absolute_ttl_secs,
            "IDP_REFRESH_TOKEN_IDLE_TTL_SECS must be at least 60 and at most \
             IDP_REFRESH_TOKEN_ABSOLUTE_TTL_SECS"
        );
        ensure!(
            (60..=31_536_000).contains(&self.session_idle_timeout_secs),
            "IDP_SESSION_IDLE_TIMEOUT_SECS must be between 60 and 31536000"
        );
        ensure!(
            self.session_lifetime_secs >= self.session_idle_timeout_secs
                && self.session_lifetime_secs <= 31_536_000,
            "IDP_SESSION_LIFETIME_SECS must be at least IDP_SESSION_IDLE_TIMEOUT_SECS and \
             at most 31536000"
        );
        ensure!(
            (1..=1000).contains(&self.max_sessions_per_user),
            "IDP_MAX_SESSIONS_PER_USER must be between 1 and 1000"
        );
        service_kit::db::Backend::from_url(&self.database_url).context("IDP_DATABASE_URL")?;
        self.validate_throttle()?;
        self.validate_key_schedule()
    }

    /// The throttle settings, checked at start-up and named when wrong.
    fn validate_throttle(&self) -> anyhow::Result<()> {
        ensure!(
            (1..=1000).contains(&self.login_max_failures_per_account),
            "IDP_LOGIN_MAX_FAILURES_PER_ACCOUNT must be between 1 and 1000"
        );
        ensure!(
            (1..=100_000).contains(&self.login_max_failures_per_ip),
            "IDP_LOGIN_MAX_FAILURES_PER_IP must be between 1 and 100000"
        );
        ensure!(
            (60..=86_400).contains(&self.login_failure_window_secs),
            "IDP_LOGIN_FAILURE_WINDOW_SECS must be between 60 and 86400"
        );
        ensure!(
            (1..=86_400).contains(&self.login_lock_secs),
            "IDP_LOGIN_LOCK_SECS must be between 1 and 86400"
        );
        ensure!(
            self.login_max_lock_secs >= self.login_lock_secs && self.login_max_lock_secs <= 86_400,
            "IDP_LOGIN_MAX_LOCK_SECS must be at least IDP_LOGIN_LOCK_SECS and at most 86400"
        );
        ensure!(
            (1..=3600).contains(&self.registration_accounts_per_hour),
            "IDP_REGISTRATION_ACCOUNTS_PER_HOUR must be between 1 and 3600"
        );
        ensure!(
            (1..=100_000).contains(&self.registration_accounts_burst),
            "IDP_REGISTRATION_ACCOUNTS_BURST must be between 1 and 100000"
        );
        ensure!(
            (1..=100_000).contains(&self.registration_max_failures_per_ip),
            "IDP_REGISTRATION_MAX_FAILURES_PER_IP must be between 1 and 100000"
        );
        ensure!(
            (60..=86_400).contains(&self.registration_window_secs),
            "IDP_REGISTRATION_WINDOW_SECS must be between 60 and 86400"
        );
        Ok(())
    }

    /// The key lifecycle's times, checked against each other (see docs/keys.md): a
    /// staged key must be in every cache before it signs.
    fn validate_key_schedule(&self) -> anyhow::Result<()> {
        ensure!(
            self.jwks_max_age_secs <= 86_400,
            "IDP_JWKS_MAX_AGE_SECS must be at most 86400"
        );
        ensure!(
            self.clock_skew_secs <= 600,
            "IDP_CLOCK_SKEW_SECS must be at most 600"
        );
        ensure!(
            (1..=3600).contains(&self.key_check_interval_secs),
            "IDP_KEY_CHECK_INTERVAL_SECS must be between 1 and 3600"
        );
        let least = self.least_key_prepublication_secs();
        ensure!(
            self.key_prepublication_secs() >= least,
            "IDP_KEY_PREPUBLICATION_SECS must be at least IDP_JWKS_MAX_AGE_SECS + \
             IDP_CLOCK_SKEW_SECS + IDP_KEY_CHECK_INTERVAL_SECS ({least})"
        );
        ensure!(
            (3600..=366 * 86_400).contains(&self.key_rotation_period_secs),
            "IDP_KEY_ROTATION_PERIOD_SECS must be between 3600 and 31622400"
        );
        ensure!(
            self.key_rotation_period_secs > 2 * self.key_prepublication_secs(),
            "IDP_KEY_ROTATION_PERIOD_SECS must be more than twice IDP_KEY_PREPUBLICATION_SECS"
        );
        Ok(())
    }

    fn least_key_prepublication_secs(&self) -> u64 {
        self.jwks_max_age_secs + self.clock_skew_secs + self.key_check_interval_secs
    }

    /// The effective pre-publication window (the setting, or its least value).
    pub fn key_prepublication_secs(&self) -> u64 {
        self.key_prepublication_secs
            .unwrap_or_else(|| self.least_key_prepublication_secs())
    }

    /// How long a retired key stays published: the longest token it signed (access or
    /// ID token), plus the JWKS cache time, the clock skew, and the reload lag of other
    /// instances (which may sign with it for up to one check interval after it retired).
    pub fn key_retire_after_secs(&self) -> u64 {
        self.access_token_ttl_secs.max(self.id_token_ttl_secs)
            + self.jwks_max_age_secs
            + self.clock_skew_secs
            + self.key_check_interval_secs
    }

    /// Whether browsers reach us over TLS (cookies get `Secure`, responses HSTS).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// OIDC Discovery §3: an https URL (http allowed for local use) with no query or
/// fragment. We also refuse a trailing slash so `issuer + path` is unambiguous.
fn validate_issuer(issuer: &str) -> anyhow::Result<()> {
    let Some(rest) = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
    else {
        bail!("must start with https:// (or http:// for local use)");
    };
    if rest.is_empty() || rest.starts_with('/') {
        bail!("must name a host");
    }
    if issuer.contains(['?', '#']) || issuer.ends_with('/') {
        bail!("must not contain a query or fragment, nor end with '/'");
    }
    if issuer.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("must not contain whitespace");
    }
    Ok(())
}

/// Each capability's part of the settings: the capabilities never see [`Settings`].
impl Settings {
    pub fn key_schedule(&self) -> KeySchedule {
        KeySchedule {
            rotation_period: secs(self.key_rotation_period_secs),
            prepublication: secs(self.key_prepublication_secs()),
            retire_after: secs(self.key_retire_after_secs()),
            check_interval: secs(self.key_check_interval_secs),
        }
    }

    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            idle_timeout_secs: secs(self.session_idle_timeout_secs),
            lifetime_secs: secs(self.session_lifetime_secs),
            max_per_user: self.max_sessions_per_user,
        }
    }

    pub fn throttle_policies(&self) -> Policies {
        let window_secs = self.login_failure_window_secs;
        Policies {
            account: Policy {
                max_failures: self.login_max_failures_per_account,
                window_secs,
                lock_secs: self.login_lock_secs,
                max_lock_secs: self.login_max_lock_secs,
            },
            ip: Policy {
                max_failures: self.login_max_failures_per_ip,
                window_secs,
                lock_secs: self.login_lock_secs,
                max_lock_secs: self.login_max_lock_secs,
            },
            // A fixed budget per window: the lock lasts until the window would end.
            registration: Policy {
                max_failures: self.registration_max_failures_per_ip,
                window_secs: self.registration_window_secs,
                lock_secs: self.registration_window_secs,
                max_lock_secs: self.registration_window_secs,
            },
            accounts_created: Rate {
                per_hour: self.registration_accounts_per_hour,
                burst: self.registration_accounts_burst,
            },
        }
    }

    pub fn token_policy(&self) -> TokenPolicy {
        TokenPolicy {
            audience: self.audience.clone(),
            access_token_ttl_secs: self.access_token_ttl_secs,
            id_token_ttl_secs: self.id_token_ttl_secs,
            refresh_token_idle_ttl_secs: self.refresh_token_idle_ttl_secs,
            refresh_token_absolute_ttl_secs: self.refresh_token_absolute_ttl_secs,
        }
    }

    pub fn http_config(&self) -> HttpConfig {
        HttpConfig {
            https: self.is_https(),
            access_token_ttl_secs: self.access_token_ttl_secs,
            authorization_code_ttl_secs: self.authorization_code_ttl_secs,
            jwks_max_age_secs: self.jwks_max_age_secs,
            trusted_proxies: self.trusted_proxies.clone(),
            require_mfa: self.require_mfa,
        }
    }

    /// Where mail goes; the sender address is checked here.
    pub fn mail_config(&self) -> anyhow::Result<MailConfig> {
        let from = match &self.mail_from {
            Some(from) => from.clone(),
            None => format!("no-reply@{}", self.issuer_host()),
        };
        let from: Mailbox = from
            .parse()
            .with_context(|| format!("IDP_MAIL_FROM={from} is not a mail address"))?;
        ensure!(
            (1..=100).contains(&self.mail_max_attempts),
            "IDP_MAIL_MAX_ATTEMPTS must be between 1 and 100"
        );
        ensure!(
            (1..=3600).contains(&self.mail_poll_secs),
            "IDP_MAIL_POLL_SECS must be between 1 and 3600"
        );
        ensure!(
            (1..=300).contains(&self.smtp_timeout_secs),
            "IDP_SMTP_TIMEOUT_SECS must be between 1 and 300"
        );
        Ok(MailConfig {
            from,
            transport: match &self.smtp_url {
                Some(url) => TransportConfig::Smtp(url.0.clone()),
                None => TransportConfig::Mailbox(self.mail_dir.clone()),
            },
            max_attempts: self.mail_max_attempts,
            poll_secs: self.mail_poll_secs,
            send_timeout_secs: self.smtp_timeout_secs,
        })
    }

    /// How security events are delivered.
    pub fn events_config(&self) -> anyhow::Result<EventsConfig> {
        ensure!(
            (1..=100).contains(&self.events_max_attempts),
            "IDP_EVENTS_MAX_ATTEMPTS must be between 1 and 100"
        );
        ensure!(
            (1..=3600).contains(&self.events_poll_secs),
            "IDP_EVENTS_POLL_SECS must be between 1 and 3600"
        );
        ensure!(
            (1..=60).contains(&self.events_timeout_secs),
            "IDP_EVENTS_TIMEOUT_SECS must be between 1 and 60"
        );
        Ok(EventsConfig {
            max_attempts: self.events_max_attempts,
            poll_secs: self.events_poll_secs,
            timeout_secs: self.events_timeout_secs,
        })
    }

    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            max_connections: self.max_connections,
        }
    }

    /// How authenticator apps label this service (the issuer's host), where
    /// second-factor notices point,
    /// and the WebAuthn relying party: the issuer's host as its id and the issuer as
    /// the only origin, which `webauthn-rs` checks agree. An issuer on an IP address
    /// cannot have passkeys (WebAuthn needs a domain, `localhost` included): the idp
    /// starts without them and says so.
    pub fn factor_policy(&self) -> anyhow::Result<FactorPolicy> {
        let origin = url::Url::parse(&self.issuer).context("IDP_ISSUER")?;
        let rp_id = self.issuer_host();
        let webauthn = match WebauthnBuilder::new(&rp_id, &origin)
            .and_then(|b| b.rp_name(&rp_id).build())
        {
            Ok(webauthn) => Some(std::sync::Arc::new(webauthn)),
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "Passkeys are off: the issuer's host cannot be a WebAuthn relying party id (use a domain name)");
                None
            }
        };
        Ok(FactorPolicy {
            issuer_label: rp_id,
            account_url: format!("{}{}", self.issuer, endpoints::ACCOUNT_PAGE),
            webauthn,
        })
    }

    /// The issuer's host name (`localhost` if it has none).
    fn issuer_host(&self) -> String {
        url::Url::parse(&self.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "localhost".to_owned())
    }

    pub fn browser_session_config(&self) -> BrowserSessionConfig {
        BrowserSessionConfig {
            database_url: self.database_url.clone(),
            database_max_connections: self.database_max_connections,
            idle_timeout_secs: self.session_idle_timeout_secs,
            https: self.is_https(),
        }
    }
}

/// Seconds as the `i64` timestamps are counted in; validated settings are far below
/// the cap, which only keeps the arithmetic on them from overflowing.
pub fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Settings::default().validate().is_ok());
    }

    #[test]
    fn password_hashes_run_one_per_core_by_default() {
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(Settings::default().max_concurrent_hashes, cores.min(256));
    }

    #[test]
    fn issuers_must_be_plain_http_urls() {
        for good in ["http://localhost:3000", "https://id.example.com/tenant"] {
            assert!(validate_issuer(good).is_ok(), "{good}");
        }
        for bad in [
            "localhost:3000",
            "ftp://x",
            "https://",
            "https://x/",
            "https://x?a=b",
            "https://x#f",
            "https://x y",
        ] {
            assert!(validate_issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        let s = Settings {
            access_token_ttl_secs: 5,
            ..Settings::default()
        };
        let err = format!(
            "{:#}",
            s.validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        );
        assert!(err.contains("IDP_ACCESS_TOKEN_TTL_SECS"), "{err}");
    }

    #[test]
    fn key_schedule_relations_are_checked_and_named() {
        let error = |s: Settings| {
            s.validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let short = Settings {
            key_prepublication_secs: Some(300),
            ..Settings::default()
        };
        assert!(error(short).contains("IDP_KEY_PREPUBLICATION_SECS"));
        let fast = Settings {
            key_rotation_period_secs: 3600,
            key_prepublication_secs: Some(1800),
            ..Settings::default()
        };
        assert!(error(fast).contains("IDP_KEY_ROTATION_PERIOD_SECS"));
        let long_cache = Settings {
            jwks_max_age_secs: 3600,
            key_prepublication_secs: Some(1000),
            ..Settings::default()
        };
        assert!(error(long_cache).contains("IDP_JWKS_MAX_AGE_SECS"));
        let defaults = Settings::default();
        assert_eq!(defaults.key_prepublication_secs(), 300 + 60 + 5);
        assert_eq!(defaults.key_retire_after_secs(), 3600 + 300 + 60 + 5);
    }

    #[test]
    fn the_key_encryption_key_is_never_printed() {
        let s = Settings {
            key_encryption_key: Some(KeyEncryptionKeySetting("c2VjcmV0".to_owned())),
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains("c2VjcmV0"));
    }
}
