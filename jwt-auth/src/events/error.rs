//! Why a pushed SET was refused, as the error codes of RFC 8935 §2.4. The description is
//! for the transmitter's operator; it never repeats the SET or the `Authorization` value.

#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// The `Authorization` header is missing or not the configured value.
    #[error("the transmitter could not be authenticated")]
    AuthenticationFailed,
    /// The request is not a SET we can read, or its event does not conform.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The body is larger than a SET can be.
    #[error("the SET is larger than {0} bytes")]
    TooLarge(usize),
    /// The key is unknown to the issuer's JWKS, or the signature does not verify.
    #[error("{0}")]
    InvalidKey(&'static str),
    #[error("the SET issuer is not the trusted one")]
    InvalidIssuer,
    #[error("the SET audience does not include this receiver")]
    InvalidAudience,
    /// The issuer's keys cannot be had now; the transmitter should try again.
    #[error("the issuer's signing keys are unavailable")]
    KeysUnavailable,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl SetError {
    /// The RFC 8935 §2.4 error code (`err`); the two failures that are ours, not the
    /// SET's, have none.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::AuthenticationFailed => Some("authentication_failed"),
            Self::InvalidRequest(_) | Self::TooLarge(_) => Some("invalid_request"),
            Self::InvalidKey(_) => Some("invalid_key"),
            Self::InvalidIssuer => Some("invalid_issuer"),
            Self::InvalidAudience => Some("invalid_audience"),
            Self::KeysUnavailable | Self::Unexpected(_) => None,
        }
    }
}
