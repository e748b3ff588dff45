//! Why a token was refused. These reasons are for logs only: callers always get the
//! same `invalid_token` answer, so a forger learns nothing from our responses.

use crate::jws::MAX_TOKEN_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("the token is not a compact JWS: {0}")]
    Malformed(&'static str),
    #[error("the header or the payload names a member twice")]
    DuplicateMember,
    #[error("the header alg is not RS256")]
    UnsupportedAlgorithm,
    #[error("the header typ is not the expected one")]
    WrongType,
    #[error("the header has a crit parameter")]
    CriticalHeader,
    #[error("the header has no kid")]
    MissingKeyId,
    #[error("no signing key of the issuer has this kid")]
    UnknownKey,
    #[error("the issuer's signing keys are unavailable")]
    KeysUnavailable,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the claims are malformed: {0}")]
    MalformedClaims(String),
    #[error("the issuer is not the trusted one")]
    WrongIssuer,
    #[error("the audience does not include this server")]
    WrongAudience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was issued in the future (iat)")]
    IssuedInFuture,
    /// A security event from the issuer ended the session, the credential or the
    /// account the token was issued for ([`crate::revocation`]).
    #[error("the token was revoked by a security event")]
    Revoked,
}
