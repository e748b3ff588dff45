//! What a client is: its id, kind, redirect URIs, allowances and policies, each parsed
//! at the edge into a type that cannot hold an invalid value.

use std::fmt;

use crate::oauth::Scope;

/// A client identifier: 1 to 64 characters of `[A-Za-z0-9._-]`. Generated ones start
/// with `c_` and are never UUIDs, so a client's `sub` cannot collide with a user's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(input: &str) -> Option<Self> {
        let ok = (1..=64).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        ok.then(|| Self(input.to_owned()))
    }

    pub fn generate() -> Self {
        Self(format!("c_{}", crate::guards::secrets::random_token(16)))
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientType {
    /// Can keep a secret (a server-side web app, a service).
    Confidential,
    /// Cannot (an SPA, a native app): PKCE is its proof instead.
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "confidential" => Some(Self::Confidential),
            "public" => Some(Self::Public),
            _ => None,
        }
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2 names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

impl AuthMethod {
    pub const SUPPORTED: [&'static str; 3] = ["client_secret_basic", "client_secret_post", "none"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const SUPPORTED: [&'static str; 3] =
        ["authorization_code", "refresh_token", "client_credentials"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(Self::AuthorizationCode),
            "refresh_token" => Some(Self::RefreshToken),
            "client_credentials" => Some(Self::ClientCredentials),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentPolicy {
    /// Ask the user once per client and scope set.
    Ask,
    /// First-party client: the user is not asked.
    Skip,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PkcePolicy {
    /// Every authorization request must carry an S256 challenge (the default).
    Required,
    /// Confidential clients only: PKCE is used when the request carries a challenge.
    Optional,
}

/// A redirect URI, compared with others by exact string equality (no normalisation).
/// Absolute, no fragment; `https`, `http` on a loopback host, or a private-use scheme
/// for native apps (RFC 8252 §7.1, which must contain a dot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let url = url::Url::parse(input).map_err(|_| "is not an absolute URI")?;
        if url.fragment().is_some() || input.contains('#') {
            return Err("must not contain a fragment");
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&url) => {}
            "http" => return Err("must use https (http is allowed for loopback hosts only)"),
            scheme if scheme.contains('.') => {}
            _ => {
                return Err("must use https, http on loopback, or a reverse-domain private scheme");
            }
        }
        Ok(Self(input.to_owned()))
    }

    /// RFC 8252 §7.3: for loopback IP redirect URIs, the port may vary at request time.
    pub fn matches_request(&self, requested: &str) -> bool {
        if self.0 == requested {
            return true;
        }
        let (Ok(registered), Ok(asked)) = (url::Url::parse(&self.0), url::Url::parse(requested))
        else {
            return false;
        };
        let loopback_ip = |u: &url::Url| {
            u.scheme() == "http"
                && matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        };
        loopback_ip(&registered)
            && loopback_ip(&asked)
            && registered.host() == asked.host()
            && registered.path() == asked.path()
            && registered.query() == asked.query()
            && registered.username() == asked.username()
            && asked.password().is_none()
    }
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl AsRef<str> for RedirectUri {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A registered client.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub client_type: ClientType,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub allowed_scope: Scope,
    pub grant_types: Vec<GrantType>,
    pub consent: ConsentPolicy,
    pub pkce: PkcePolicy,
    /// Its users must have signed in with a second factor before it gets a code.
    pub require_mfa: bool,
    /// Where it is told that a session it signed in to ended.
    pub backchannel_logout: Option<BackchannelLogout>,
    pub created_at: i64,
}

/// A client's OpenID Connect Back-Channel Logout 1.0 registration (§2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackchannelLogout {
    pub uri: String,
    /// The client needs `sid` in logout tokens (ours always carry it).
    pub session_required: bool,
}

impl BackchannelLogout {
    /// An absolute http(s) URI without a fragment, on the scheme, host and port of one
    /// of `redirect_uris` (§2.2: the RP's own origin, so registering it cannot aim the
    /// idp's requests elsewhere).
    pub fn parse(
        uri: &str,
        session_required: bool,
        redirect_uris: &[RedirectUri],
    ) -> Result<Self, &'static str> {
        let url = url::Url::parse(uri)
            .map_err(|_| "the back-channel logout URI is not an absolute URI")?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err("the back-channel logout URI must use https or http");
        }
        if url.fragment().is_some() || uri.contains('#') {
            return Err("the back-channel logout URI must not contain a fragment");
        }
        let same_origin = redirect_uris
            .iter()
            .any(|r| url::Url::parse(r.as_ref()).is_ok_and(|r| r.origin() == url.origin()));
        if !same_origin {
            return Err(
                "the back-channel logout URI must share scheme, host and port with a redirect URI",
            );
        }
        Ok(Self {
            uri: uri.to_owned(),
            session_required,
        })
    }
}

impl Client {
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// The registered redirect URI `requested` matches, if any.
    pub fn redirect_uri(&self, requested: &str) -> Option<&RedirectUri> {
        self.redirect_uris
            .iter()
            .find(|r| r.matches_request(requested))
    }

    pub fn requires_pkce(&self) -> bool {
        self.client_type == ClientType::Public || self.pkce == PkcePolicy::Required
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_absolute_without_fragment_and_safe_schemes() {
        for ok in [
            "https://app.example.com/callback",
            "http://localhost:8080/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:9/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/relative",
            "https://app.example.com/cb#frag",
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "myapp:/cb",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_loopback_ip_redirects_may_vary_their_port() {
        let loopback = RedirectUri::parse("http://127.0.0.1/cb").unwrap();
        assert!(loopback.matches_request("http://127.0.0.1/cb"));
        assert!(loopback.matches_request("http://127.0.0.1:51004/cb"));
        assert!(!loopback.matches_request("http://127.0.0.1:51004/other"));
        assert!(!loopback.matches_request("http://127.0.0.2:51004/cb"));
        let web = RedirectUri::parse("https://app.example.com/cb").unwrap();
        assert!(web.matches_request("https://app.example.com/cb"));
        assert!(!web.matches_request("https://app.example.com:8443/cb"));
        assert!(
            !web.matches_request("https://APP.example.com/cb"),
            "exact, no normalisation"
        );
        assert!(!web.matches_request("https://app.example.com/cb/"));
        let localhost = RedirectUri::parse("http://localhost:3000/cb").unwrap();
        assert!(
            !localhost.matches_request("http://localhost:3001/cb"),
            "names are not IP literals"
        );
    }
}
