//! What the JSON OAuth endpoints (token, revocation, introspection, userinfo) share on
//! the wire: the one mapping of [`OAuthError`] to an HTTP response (RFC 6749 §5.2,
//! RFC 6750 §3.1), responses that are never cached, a form extractor whose rejections
//! come out as OAuth errors, and reading a client's credentials from a request.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::guards::secrets::Secret;
use crate::oauth::clients::{
    Client, ClientAuthError, ClientId, ClientType, Clients, PresentedCredentials,
};
use crate::oauth::{ErrorCode, OAuthError};

/// Far above any valid token request (a code, a verifier, a redirect URI, a secret).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// `WWW-Authenticate` for a client that authenticated with HTTP Basic (RFC 6749 §5.2).
const BASIC_CHALLENGE: &str = r#"Basic realm="idp""#;

/// An OAuth error as a JSON response: `{"error", "error_description"}`, never cached.
#[derive(Debug)]
pub struct OAuthJsonError {
    pub error: OAuthError,
    pub www_authenticate: Option<HeaderValue>,
    /// Set for a throttled client: a 429 with `Retry-After` (seconds).
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
}

impl OAuthJsonError {
    pub fn new(error: OAuthError) -> Self {
        Self {
            error,
            www_authenticate: None,
            retry_after_secs: None,
        }
    }

    /// Too many failed client authentications from this IP address. RFC 6749 has no
    /// code for this; `temporarily_unavailable` is the registered code that says "not
    /// now, not your credentials" (unlike `invalid_client`, which would make a correct
    /// client doubt its secret), sent as a 429 with `Retry-After` (RFC 6585 §4).
    pub fn throttled(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "Too many failed client authentications from this address; retry later",
            ))
        }
    }

    pub fn with_www_authenticate(mut self, challenge: HeaderValue) -> Self {
        self.www_authenticate = Some(challenge);
        self
    }

    pub fn invalid_request(description: &'static str) -> Self {
        Self::new(OAuthError::invalid_request(description))
    }

    /// A 500 whose body says nothing; the cause chain is logged here, once.
    pub fn unexpected(error: &anyhow::Error) -> Self {
        tracing::error!(
            error = format!("{error:#}"),
            "OAuth request failed unexpectedly"
        );
        Self::new(OAuthError::server_error())
    }

    /// `invalid_client`: 401, with the Basic challenge when the client used it.
    fn invalid_client(used_basic: bool) -> Self {
        let error = Self::new(OAuthError::new(
            ErrorCode::InvalidClient,
            "Client authentication failed",
        ));
        if used_basic {
            error.with_www_authenticate(HeaderValue::from_static(BASIC_CHALLENGE))
        } else {
            error
        }
    }
}

impl From<OAuthError> for OAuthJsonError {
    fn from(error: OAuthError) -> Self {
        Self::new(error)
    }
}

/// RFC 6749 §5.2 (400, or 401 for `invalid_client`), RFC 6750 §3.1 (401 for
/// `invalid_token`, 403 for `insufficient_scope`), and 5xx for the server's own errors.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope | ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for OAuthJsonError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.error.code.as_str(),
            error_description: self.error.description.as_deref(),
        };
        let status = match self.retry_after_secs {
            Some(_) => StatusCode::TOO_MANY_REQUESTS,
            None => status_of(self.error.code),
        };
        let mut response = (status, no_store(Json(body))).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.www_authenticate {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// RFC 6749 §5.1: responses carrying tokens (or about them) must not be cached.
pub fn no_store(response: impl IntoResponse) -> Response {
    (
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        response,
    )
        .into_response()
}

/// A JSON body, never cached.
pub fn no_store_json(body: impl Serialize) -> Response {
    no_store(Json(body))
}

/// An `application/x-www-form-urlencoded` body (RFC 6749 §3.2 and Appendix B), read
/// into `T` (whose fields are `Option<String>`). A parameter sent twice is an error and
/// an empty one counts as absent (§3.1); unknown ones are ignored. Rejections are
/// `invalid_request` in JSON, not axum's plain text.
#[derive(Debug)]
pub struct OAuthForm<T>(pub T);

impl<S, T> FromRequest<S> for OAuthForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = OAuthJsonError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(req, state)
            .await
            .map_err(|rejection| form_rejection(&rejection))?;
        let mut params: HashMap<String, String> = HashMap::with_capacity(pairs.len());
        let mut seen: HashSet<String> = HashSet::with_capacity(pairs.len());
        for (name, value) in pairs {
            if !seen.insert(name.clone()) {
                return Err(OAuthJsonError::invalid_request(
                    "A parameter was included more than once",
                ));
            }
            if !value.is_empty() {
                params.insert(name, value);
            }
        }
        let object: serde_json::Map<String, serde_json::Value> = params
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        serde_json::from_value(serde_json::Value::Object(object))
            .map(Self)
            .map_err(|_| OAuthJsonError::invalid_request("The request parameters are malformed"))
    }
}

fn form_rejection(rejection: &FormRejection) -> OAuthJsonError {
    match rejection {
        FormRejection::InvalidFormContentType(_) => OAuthJsonError::invalid_request(
            "The body must be sent as application/x-www-form-urlencoded",
        ),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            OAuthJsonError::invalid_request("The request body is too large")
        }
        _ => OAuthJsonError::invalid_request("The request body could not be read"),
    }
}

/// Which client authentication methods a request may use.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Token and revocation endpoints: secrets, or `none` for public clients.
    AnyRegistered,
    /// Introspection (RFC 7662 §2.1): confidential clients only.
    ConfidentialOnly,
}

/// Reads the client's credentials (RFC 6749 §2.3.1: HTTP Basic or the body; or only a
/// `client_id` for a public client) and authenticates them with the registered method.
/// Exactly one method per request.
pub async fn authenticate_client(
    clients: &Clients,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
    client_id: Option<String>,
    client_secret: Option<String>,
    allowed: Allowed,
) -> Result<Client, OAuthJsonError> {
    let presented = presented_credentials(headers, client_id, client_secret)?;
    let used_basic = matches!(presented, PresentedCredentials::Basic { .. });
    let client = match clients.authenticate(&presented, ip).await {
        Ok(client) => client,
        Err(ClientAuthError::Failed) => return Err(OAuthJsonError::invalid_client(used_basic)),
        Err(ClientAuthError::Throttled { retry_after_secs }) => {
            return Err(OAuthJsonError::throttled(retry_after_secs));
        }
        Err(ClientAuthError::Unexpected(e)) => return Err(OAuthJsonError::unexpected(&e)),
    };
    if allowed == Allowed::ConfidentialOnly && client.client_type != ClientType::Confidential {
        return Err(OAuthJsonError::invalid_client(used_basic));
    }
    Ok(client)
}

/// What the request presents, before any lookup.
pub fn presented_credentials(
    headers: &HeaderMap,
    client_id: Option<String>,
    client_secret: Option<String>,
) -> Result<PresentedCredentials, OAuthJsonError> {
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        let (basic_id, secret) =
            parse_basic(authorization).ok_or_else(|| OAuthJsonError::invalid_client(true))?;
        if client_secret.is_some() {
            return Err(OAuthJsonError::invalid_request(
                "Use one client authentication method, not several",
            ));
        }
        if client_id.as_ref().is_some_and(|id| *id != basic_id) {
            return Err(OAuthJsonError::invalid_request(
                "The client_id does not match the Authorization header",
            ));
        }
        let client_id = known_id(basic_id, true)?;
        return Ok(PresentedCredentials::Basic {
            client_id,
            secret: Secret::from_presented(secret),
        });
    }
    match (client_id, client_secret) {
        (Some(client_id), Some(secret)) => Ok(PresentedCredentials::Post {
            client_id: known_id(client_id, false)?,
            secret: Secret::from_presented(secret),
        }),
        (Some(client_id), None) => Ok(PresentedCredentials::None {
            client_id: known_id(client_id, false)?,
        }),
        (None, Some(_)) => Err(OAuthJsonError::invalid_request(
            "client_secret was sent without client_id",
        )),
        // §5.2: "no client authentication included".
        (None, None) => Err(OAuthJsonError::invalid_client(false)),
    }
}

/// A syntactically valid client id, or the same answer as an unknown one.
fn known_id(client_id: String, used_basic: bool) -> Result<String, OAuthJsonError> {
    match ClientId::parse(&client_id) {
        Some(_) => Ok(client_id),
        None => Err(OAuthJsonError::invalid_client(used_basic)),
    }
}

/// `Basic base64(urlencode(client_id) ":" urlencode(secret))` (RFC 6749 §2.3.1,
/// RFC 7617). The scheme is case-insensitive; padding may be omitted.
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let encoded = encoded.trim();
    let decoded = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_urldecode(id)?, form_urldecode(secret)?))
}

/// `application/x-www-form-urlencoded` decoding of one component: `+` is a space and
/// `%XX` a byte; a stray `%` or a result that is not UTF-8 is refused.
fn form_urldecode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The access token a request to a protected resource presented (RFC 6750 §2).
pub enum BearerToken {
    /// No Bearer credentials at all (§3.1: answer without an error code).
    Missing,
    /// A token whose value is not a token.
    Malformed,
    /// Presented in a way we refuse (§2: more than one method; §2.3: the query): 400
    /// `invalid_request`.
    Refused(&'static str),
    Present(String),
}

/// The token in `Authorization: Bearer` (RFC 6750 §2.1).
pub fn bearer_token(headers: &HeaderMap) -> BearerToken {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return BearerToken::Missing;
    };
    let Ok(value) = value.to_str() else {
        return BearerToken::Malformed;
    };
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return BearerToken::Missing;
    }
    b64token(token.trim())
}

/// The token in the `Authorization: Bearer` header (§2.1) or in the `access_token`
/// parameter of a form-encoded body (§2.2; `form_body` is the body of a POST sent as
/// `application/x-www-form-urlencoded`, `None` otherwise). Never both: "clients MUST NOT
/// use more than one method" (§2). Never the query (§2.3, which we do not offer: URLs
/// end up in logs and browser history).
pub fn presented_token(
    headers: &HeaderMap,
    query: Option<&str>,
    form_body: Option<&[u8]>,
) -> BearerToken {
    let named_token =
        |(name, _): &(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)| name == "access_token";
    if query.is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|p| named_token(&p))) {
        return BearerToken::Refused("The access token must not be sent in the URL query");
    }
    let in_body: Vec<String> = form_body
        .map(|body| {
            url::form_urlencoded::parse(body)
                .filter(named_token)
                .map(|(_, value)| value.into_owned())
                .collect()
        })
        .unwrap_or_default();
    let in_header = bearer_token(headers);
    match (in_body.as_slice(), in_header) {
        ([], in_header) => in_header,
        ([_], BearerToken::Missing) => b64token(&in_body[0]),
        ([_], _) => BearerToken::Refused(
            "Send the access token one way only: the Authorization header or the form body",
        ),
        _ => BearerToken::Refused("access_token is given more than once"),
    }
}

/// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" (RFC 6750 §2.1)
fn b64token(token: &str) -> BearerToken {
    let body = token.trim_end_matches('=');
    let well_formed = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if well_formed {
        BearerToken::Present(token.to_owned())
    } else {
        BearerToken::Malformed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_urldecoded_after_base64() {
        // RFC 6749 §2.3.1: encode each part, then base64 "id:secret".
        let raw = STANDARD.encode("c_abc:a%2Bb%3Ac+d%25");
        let value = HeaderValue::from_str(&format!("Basic {raw}")).unwrap();
        assert_eq!(
            parse_basic(&value),
            Some(("c_abc".to_owned(), "a+b:c d%".to_owned()))
        );
        let lower = HeaderValue::from_str(&format!("basic {raw}")).unwrap();
        assert!(parse_basic(&lower).is_some());
        let bearer = HeaderValue::from_static("Bearer abc");
        assert!(parse_basic(&bearer).is_none());
        let stray = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode("id:50%"))).unwrap();
        assert!(parse_basic(&stray).is_none());
    }

    #[test]
    fn error_statuses_follow_the_rfcs() {
        assert_eq!(
            status_of(ErrorCode::InvalidClient),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(status_of(ErrorCode::InvalidGrant), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(ErrorCode::InvalidToken), StatusCode::UNAUTHORIZED);
        assert_eq!(
            status_of(ErrorCode::InsufficientScope),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status_of(ErrorCode::ServerError),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
