//! The OAuth 2.0 / OpenID Connect endpoints: [`authorize`], [`token`], [`userinfo`],
//! [`revocation`], [`introspection`], [`logout`]; [`json`] holds what the
//! JSON endpoints share (client authentication, the form extractor, error responses).

pub mod authorize;
pub mod introspection;
pub mod json;
pub mod logout;
pub mod revocation;
pub mod token;
pub mod userinfo;
