//! OAuth error codes (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7009, OIDC Core
//! §3.1.2.6). Descriptions are fixed strings of RFC 6749's allowed characters
//! (%x20-21 / %x23-5B / %x5D-7E): never user input, never secrets.

use std::borrow::Cow;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
    InsufficientScope,
    UnsupportedTokenType,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    /// OpenID Connect Core Error Code `unmet_authentication_requirements` 1.0.
    UnmetAuthenticationRequirements,
    RequestNotSupported,
    RequestUriNotSupported,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
        }
    }
}

/// An OAuth error: a code and an optional human-readable description.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Option<Cow<'static, str>>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: &'static str) -> Self {
        debug_assert!(is_valid_description(description), "{description}");
        Self {
            code,
            description: Some(Cow::Borrowed(description)),
        }
    }

    pub fn bare(code: ErrorCode) -> Self {
        Self {
            code,
            description: None,
        }
    }

    pub fn invalid_request(description: &'static str) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "The server could not complete the request",
        )
    }
}

/// RFC 6749 §4.1.2.1: `error_description` is limited to %x20-21 / %x23-5B / %x5D-7E.
pub fn is_valid_description(s: &str) -> bool {
    s.bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_limited_to_rfc_6749_characters() {
        assert!(is_valid_description("The code has expired (or was used)"));
        assert!(!is_valid_description("quote \" inside"));
        assert!(!is_valid_description("back\\slash"));
        assert!(!is_valid_description("caf\u{e9}"));
    }
}
