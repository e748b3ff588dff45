//! The authorization endpoint's protocol logic (RFC 6749 §4.1.1, OIDC Core §3.1.2),
//! free of HTTP. A request goes through an ordered pipeline of small checks, each
//! raising a typed OAuth error:
//!
//! 1. no parameter twice (§3.1: "Request and response parameters MUST NOT be included
//!    more than once");
//! 2. the client and its redirect URI: until both are trusted, errors are shown to the
//!    user and never redirected (§4.1.2.1);
//! 3. request objects are not supported (OIDC Core §6);
//! 4. `response_type=code` only;
//! 5. the scope, within the client's allowance;
//! 6. PKCE, S256 only (RFC 7636, RFC 9700 §2.1.1);
//! 7. `prompt`, `max_age`, `id_token_hint`, `nonce`, `login_hint`, `acr_values`.
//!
//! Then, with what the browser session knows, [`authentication`] and [`consent`]
//! decide whether the user must sign in or answer the consent page, and [`issue_code`]
//! ends the flow.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

use crate::accounts::amr::{ACR_MFA, ACR_VALUES, Amr};
use crate::guards::secrets::Secret;
use crate::keys::KeyRing;
use crate::oauth::clients::{Client, ClientId, Clients, ConsentPolicy, GrantType};
use crate::oauth::id_token_hint;
use crate::oauth::pkce::CodeChallenge;
use crate::oauth::store::codes::{self, CodeRecord};
use crate::oauth::{ErrorCode, OAuthError, Scope};

/// Longest `nonce` accepted; it is copied into the ID token.
const MAX_NONCE_LEN: usize = 512;
/// Longest `login_hint` used; a longer one is ignored (hints never cause errors).
const MAX_LOGIN_HINT_LEN: usize = 254;

/// The parameters of an authorization request, as received (query string or form
/// body), in order.
#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>);

/// A parameter that was given more than once.
#[derive(Debug)]
pub struct Repeated;

impl Params {
    /// Parses `application/x-www-form-urlencoded` (a query string or a form body).
    pub fn from_urlencoded(input: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(input)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The value of `name`. RFC 6749 §3.1: parameters sent without a value are treated
    /// as omitted.
    pub fn value(&self, name: &str) -> Result<Option<&str>, Repeated> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(Repeated);
        }
        Ok(first)
    }

    fn any_repeated(&self) -> bool {
        let mut names: Vec<&str> = self
            .0
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k.as_str())
            .collect();
        names.sort_unstable();
        names.windows(2).any(|w| w[0] == w[1])
    }
}

/// Where, and with which `state`, the answer goes. Built only once the redirect URI is
/// known to be registered for the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTo {
    /// Exactly as the client sent it (a loopback port may differ from the registered
    /// one); the token endpoint compares it byte for byte.
    pub redirect_uri: String,
    /// Echoed byte for byte.
    pub state: Option<String>,
}

impl ReplyTo {
    /// The successful answer: `code`, `state`, `iss` (RFC 6749 §4.1.2, RFC 9207).
    pub fn with_code(&self, code: &Secret, issuer: &str) -> String {
        self.url(&[("code", code.expose())], issuer)
    }

    /// An error answer: `error`, optionally `error_description`, `state`, `iss`, and
    /// nothing else (RFC 6749 §4.1.2.1, RFC 9207 §2).
    pub fn with_error(&self, error: &OAuthError, issuer: &str) -> String {
        let mut params = vec![("error", error.code.as_str())];
        if let Some(description) = &error.description {
            params.push(("error_description", description));
        }
        self.url(&params, issuer)
    }

    /// Appends the parameters to the redirect URI without reparsing it, so the
    /// registered URI (and any query it has) is kept exactly.
    fn url(&self, params: &[(&str, &str)], issuer: &str) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if let Some(state) = &self.state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", issuer);
        let query = query.finish();
        let separator = match self.redirect_uri.find('?') {
            None => "?",
            Some(_) if self.redirect_uri.ends_with(['?', '&']) => "",
            Some(_) => "&",
        };
        format!("{}{separator}{query}", self.redirect_uri)
    }
}

/// What `prompt` asks for (OIDC Core §3.1.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prompt {
    /// `prompt=none`: answer without showing the user anything, or fail.
    NoInteraction,
    /// Pages may be shown; `login` and `consent` force them even when not needed.
    Interactive {
        force_login: bool,
        force_consent: bool,
    },
}

/// A request that passed every check of the pipeline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub reply: ReplyTo,
    #[serde(with = "scope_text")]
    pub scope: Scope,
    pub nonce: Option<String>,
    #[serde(with = "challenge_text")]
    pub code_challenge: Option<CodeChallenge>,
    pub prompt: Prompt,
    /// Seconds; when sent, the user must have authenticated at most this long ago.
    pub max_age: Option<u64>,
    /// The `sub` of a valid `id_token_hint`: the user the client expects.
    pub expected_subject: Option<String>,
    /// An email to pre-fill on the sign-in page.
    pub login_hint: Option<String>,
    /// `acr_values` prefers the multi-factor level: a password-only sign-in of a user
    /// who has a second factor is asked for it (step-up).
    #[serde(default)]
    pub wants_mfa: bool,
}

impl AuthorizationRequest {
    /// `openid` in the scope makes this an OpenID Connect request (an ID token will be
    /// issued); without it, it is plain OAuth 2.0.
    pub fn is_openid(&self) -> bool {
        self.scope.contains(Scope::OPENID)
    }
}

/// Why a request was refused, and therefore how to tell.
#[derive(Debug)]
pub enum Rejection {
    /// The client or its redirect URI cannot be trusted: show the error to the user,
    /// never redirect (RFC 6749 §4.1.2.1, RFC 9700 §4.11).
    ShowToUser(OAuthError),
    /// Send the error back to the client's redirect URI.
    Redirect(ReplyTo, OAuthError),
    Unexpected(anyhow::Error),
}

/// What the pipeline needs besides the parameters.
pub struct Context<'a> {
    pub clients: &'a Clients,
    pub keys: &'a KeyRing,
    pub issuer: &'a str,
}

/// Steps 1 to 7: from raw parameters to a request that may proceed.
pub async fn validate(
    params: &Params,
    ctx: &Context<'_>,
) -> Result<(AuthorizationRequest, Client), Rejection> {
    let client = check_client(params, ctx.clients).await?;
    let reply = check_redirect_uri(params, &client)?;
    // From here on the redirect URI is trusted: errors go back to the client.
    let refuse = |error: OAuthError| Rejection::Redirect(reply.clone(), error);
    check_no_repeated_parameter(params).map_err(refuse)?;
    check_no_request_object(params).map_err(refuse)?;
    check_response_type(params, &client).map_err(refuse)?;
    let scope = check_scope(params, &client).map_err(refuse)?;
    let code_challenge = check_pkce(params, &client).map_err(refuse)?;
    let prompt = check_prompt(params).map_err(refuse)?;
    let max_age = check_max_age(params).map_err(refuse)?;
    let expected_subject = check_id_token_hint(params, ctx).map_err(refuse)?;
    let nonce = check_nonce(params).map_err(refuse)?;
    let request = AuthorizationRequest {
        client_id: client.id.to_string(),
        reply,
        scope,
        nonce,
        code_challenge,
        prompt,
        max_age,
        expected_subject,
        login_hint: login_hint(params),
        wants_mfa: wants_mfa(params),
    };
    Ok((request, client))
}

fn single<'p>(params: &'p Params, name: &str) -> Result<Option<&'p str>, OAuthError> {
    params
        .value(name)
        .map_err(|Repeated| OAuthError::invalid_request("A parameter was given more than once"))
}

/// Step 2a: a registered client that may use the authorization code flow.
async fn check_client(params: &Params, clients: &Clients) -> Result<Client, Rejection> {
    let show = Rejection::ShowToUser;
    let client_id = single(params, "client_id").map_err(show)?.ok_or_else(|| {
        show(OAuthError::invalid_request(
            "The client_id parameter is missing",
        ))
    })?;
    let unknown = || {
        show(OAuthError::new(
            ErrorCode::InvalidClient,
            "The client_id is not a registered client",
        ))
    };
    if ClientId::parse(client_id).is_none() {
        return Err(unknown());
    }
    clients
        .find(client_id)
        .await
        .map_err(Rejection::Unexpected)?
        .ok_or_else(unknown)
}

/// Step 2b: the redirect URI is registered for the client (exact string, loopback port
/// variance only), and `state` is readable, since it is echoed.
fn check_redirect_uri(params: &Params, client: &Client) -> Result<ReplyTo, Rejection> {
    let show = Rejection::ShowToUser;
    let requested = single(params, "redirect_uri")
        .map_err(show)?
        .ok_or_else(|| {
            show(OAuthError::invalid_request(
                "The redirect_uri parameter is missing",
            ))
        })?;
    if client.redirect_uri(requested).is_none() {
        return Err(show(OAuthError::invalid_request(
            "The redirect_uri is not registered for this client",
        )));
    }
    let state = single(params, "state").map_err(show)?;
    Ok(ReplyTo {
        redirect_uri: requested.to_owned(),
        state: state.map(str::to_owned),
    })
}

/// Step 1, for the parameters other than those step 2 needed.
fn check_no_repeated_parameter(params: &Params) -> Result<(), OAuthError> {
    if params.any_repeated() {
        return Err(OAuthError::invalid_request(
            "A parameter was given more than once",
        ));
    }
    Ok(())
}

/// Step 3: OIDC Core §6.
fn check_no_request_object(params: &Params) -> Result<(), OAuthError> {
    if single(params, "request")?.is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "Request objects are not supported",
        ));
    }
    if single(params, "request_uri")?.is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "The request_uri parameter is not supported",
        ));
    }
    Ok(())
}

/// Step 4: the authorization code flow and nothing else (no implicit or hybrid flow:
/// RFC 9700 §2.1.2), delivered in the query.
fn check_response_type(params: &Params, client: &Client) -> Result<(), OAuthError> {
    match single(params, "response_type")? {
        None => {
            return Err(OAuthError::invalid_request(
                "The response_type parameter is missing",
            ));
        }
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "Only response_type=code is supported",
            ));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "This client may not use the authorization code flow",
        ));
    }
    match single(params, "response_mode")? {
        None | Some("query") => Ok(()),
        Some(_) => Err(OAuthError::invalid_request(
            "Only response_mode=query is supported",
        )),
    }
}

/// Step 5: order and repetition do not matter; nothing beyond the client's allowance.
fn check_scope(params: &Params, client: &Client) -> Result<Scope, OAuthError> {
    let invalid = |description| OAuthError::new(ErrorCode::InvalidScope, description);
    let scope = Scope::parse(single(params, "scope")?.unwrap_or_default())
        .map_err(|_| invalid("The scope is malformed"))?;
    if scope.is_empty() {
        return Err(invalid("The scope parameter is missing"));
    }
    if !scope.is_subset_of(&client.allowed_scope) {
        return Err(invalid("The scope exceeds what this client may ask for"));
    }
    Ok(scope)
}

/// Step 6: RFC 7636 with S256 only; `plain`, and a challenge without a method (which
/// RFC 7636 §4.3 would read as `plain`), are refused.
fn check_pkce(params: &Params, client: &Client) -> Result<Option<CodeChallenge>, OAuthError> {
    let challenge = single(params, "code_challenge")?;
    let method = single(params, "code_challenge_method")?;
    match (challenge, method) {
        (None, None) if client.requires_pkce() => Err(OAuthError::invalid_request(
            "This client must use PKCE: code_challenge is missing",
        )),
        (None, None) => Ok(None),
        (Some(_), None) => Err(OAuthError::invalid_request(
            "code_challenge_method is missing; only S256 is supported",
        )),
        (_, Some(method)) if method != "S256" => Err(OAuthError::invalid_request(
            "Only code_challenge_method=S256 is supported",
        )),
        (None, Some(_)) => Err(OAuthError::invalid_request("code_challenge is missing")),
        (Some(challenge), Some(_)) => CodeChallenge::parse(challenge).map(Some).ok_or_else(|| {
            OAuthError::invalid_request("code_challenge must be 43 base64url characters")
        }),
    }
}

/// Step 7a: OIDC Core §3.1.2.1. `select_account` is honoured as `login` (one account
/// per session: choosing one means signing in).
fn check_prompt(params: &Params) -> Result<Prompt, OAuthError> {
    let Some(value) = single(params, "prompt")? else {
        return Ok(Prompt::Interactive {
            force_login: false,
            force_consent: false,
        });
    };
    let (mut none, mut force_login, mut force_consent) = (false, false, false);
    for token in value.split(' ').filter(|t| !t.is_empty()) {
        match token {
            "none" => none = true,
            "login" | "select_account" => force_login = true,
            "consent" => force_consent = true,
            _ => return Err(OAuthError::invalid_request("Unknown prompt value")),
        }
    }
    match (none, force_login || force_consent) {
        (true, true) => Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        )),
        (true, false) => Ok(Prompt::NoInteraction),
        (false, _) => Ok(Prompt::Interactive {
            force_login,
            force_consent,
        }),
    }
}

/// Step 7b: a non-negative integer number of seconds.
fn check_max_age(params: &Params) -> Result<Option<u64>, OAuthError> {
    let Some(value) = single(params, "max_age")? else {
        return Ok(None);
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OAuthError::invalid_request(
            "max_age must be a non-negative integer",
        ));
    }
    // More digits than fit are still "a very long time".
    Ok(Some(value.parse().unwrap_or(u64::MAX)))
}

/// Step 7c: an ID token we issued (our signature and issuer; expired is fine).
fn check_id_token_hint(params: &Params, ctx: &Context<'_>) -> Result<Option<String>, OAuthError> {
    let Some(hint) = single(params, "id_token_hint")? else {
        return Ok(None);
    };
    id_token_hint::verify(hint, ctx.keys, ctx.issuer)
        .map(|hint| Some(hint.subject))
        .map_err(|_| {
            OAuthError::invalid_request(
                "The id_token_hint is not a valid ID token from this provider",
            )
        })
}

/// Step 7d: echoed in the ID token; optional for the code flow.
fn check_nonce(params: &Params) -> Result<Option<String>, OAuthError> {
    match single(params, "nonce")? {
        Some(nonce) if nonce.len() > MAX_NONCE_LEN => {
            Err(OAuthError::invalid_request("The nonce is too long"))
        }
        nonce => Ok(nonce.map(str::to_owned)),
    }
}

/// Step 7e: a hint only, so never an error (also for unknown users).
fn login_hint(params: &Params) -> Option<String> {
    single(params, "login_hint")
        .ok()
        .flatten()
        .map(str::trim)
        .filter(|h| !h.is_empty() && h.len() <= MAX_LOGIN_HINT_LEN)
        .map(str::to_owned)
}

/// `acr_values` (OIDC Core §3.1.2.1): space-separated, in order of preference, and
/// voluntary. The first value we know decides; unknown values are passed over.
fn wants_mfa(params: &Params) -> bool {
    let values = single(params, "acr_values")
        .ok()
        .flatten()
        .unwrap_or_default();
    values
        .split_whitespace()
        .find(|v| ACR_VALUES.contains(v))
        .is_some_and(|v| v == ACR_MFA)
}

/// Who is signed in, as far as the authorization decision cares.
pub struct Authentication<'a> {
    pub user_id: &'a str,
    /// Unix seconds.
    pub auth_time: i64,
    /// The sign-in used a second factor.
    pub mfa: bool,
    /// The user has a second factor to step up with (only looked up when asked for).
    pub can_step_up: bool,
}

/// The outcome of [`authentication`].
#[derive(Debug, PartialEq, Eq)]
pub enum AuthenticationStep {
    /// The signed-in user will do.
    Done,
    /// Show the sign-in page.
    SignIn,
    /// Signed in with the password alone, and the client asks for more: show the
    /// second step for the signed-in user.
    SecondFactor,
    /// A second factor is required and the user has none: offer to add one, which
    /// (its first code and the password) completes the sign-in.
    AddSecondFactor,
}

/// Step 8 (OIDC Core §3.1.2.3): sign in when nobody is, when `prompt=login` asks for a
/// fresh sign-in, when the last one is older than `max_age`, or when the client
/// expects another user (`id_token_hint`); the second factor when `acr_values` asks
/// for it, or the client or the idp requires it (`mfa_required`), and the password
/// alone signed in a user who has one. A requirement a user cannot meet yet (no second
/// factor) offers to add one, or is `unmet_authentication_requirements` with
/// `prompt=none`; a voluntary `acr_values` never is. `signed_in_for_this_request` says the user
/// just entered their password for this very request, which satisfies all of these
/// once (else `prompt=login` and `max_age=0` would loop).
pub fn authentication(
    request: &AuthorizationRequest,
    user: Option<&Authentication<'_>>,
    signed_in_for_this_request: bool,
    mfa_required: bool,
    now: i64,
) -> Result<AuthenticationStep, OAuthError> {
    let needs_sign_in = match user {
        None => true,
        Some(_) if signed_in_for_this_request => false,
        Some(user) => {
            let forced = matches!(
                request.prompt,
                Prompt::Interactive {
                    force_login: true,
                    ..
                }
            );
            let too_old = request.max_age.is_some_and(|max_age| {
                let age = u64::try_from(now.saturating_sub(user.auth_time)).unwrap_or(0);
                age > max_age
            });
            let someone_else = request
                .expected_subject
                .as_deref()
                .is_some_and(|sub| sub != user.user_id);
            forced || too_old || someone_else
        }
    };
    let wants_mfa = request.wants_mfa || mfa_required;
    let step_up = wants_mfa && user.is_some_and(|u| !u.mfa && u.can_step_up);
    let unmet = mfa_required && user.is_some_and(|u| !u.mfa && !u.can_step_up);
    match (needs_sign_in, step_up, request.prompt) {
        (false, false, Prompt::NoInteraction) if unmet => Err(OAuthError::new(
            ErrorCode::UnmetAuthenticationRequirements,
            "This application requires two-step sign-in, which the user has not set up",
        )),
        (false, false, Prompt::Interactive { .. }) if unmet => {
            Ok(AuthenticationStep::AddSecondFactor)
        }
        (false, false, _) => Ok(AuthenticationStep::Done),
        (true, _, Prompt::NoInteraction) => Err(OAuthError::new(
            ErrorCode::LoginRequired,
            "The user must sign in",
        )),
        (true, _, Prompt::Interactive { .. }) => Ok(AuthenticationStep::SignIn),
        (false, true, Prompt::NoInteraction) => Err(OAuthError::new(
            ErrorCode::InteractionRequired,
            "The user must confirm the sign-in with a second factor",
        )),
        (false, true, Prompt::Interactive { .. }) => Ok(AuthenticationStep::SecondFactor),
    }
}

/// The outcome of [`consent`].
#[derive(Debug, PartialEq, Eq)]
pub enum ConsentStep {
    Done,
    /// Show the consent page.
    Ask,
}

/// Step 9: first-party clients are not asked; otherwise a remembered consent covering
/// the scope will do, unless `prompt=consent`. `answered_for_this_request` says the
/// user just allowed this very request.
pub fn consent(
    request: &AuthorizationRequest,
    client: &Client,
    remembered: Option<&Scope>,
    answered_for_this_request: bool,
) -> Result<ConsentStep, OAuthError> {
    let forced = matches!(
        request.prompt,
        Prompt::Interactive {
            force_consent: true,
            ..
        }
    );
    let covered = remembered.is_some_and(|scope| request.scope.is_subset_of(scope));
    let needed =
        !answered_for_this_request && client.consent == ConsentPolicy::Ask && (forced || !covered);
    match (needed, request.prompt) {
        (false, _) => Ok(ConsentStep::Done),
        (true, Prompt::NoInteraction) => Err(OAuthError::new(
            ErrorCode::ConsentRequired,
            "The user must consent to this request",
        )),
        (true, Prompt::Interactive { .. }) => Ok(ConsentStep::Ask),
    }
}

/// Who the code is for.
pub struct CodeSubject<'a> {
    pub user_id: &'a str,
    pub auth_time: i64,
    /// How the user signed in.
    pub amr: &'a Amr,
    /// The OIDC session id of the sign-in; logout revokes what it produced.
    pub sid: &'a str,
}

/// Step 10: a 256-bit code, stored hashed with everything the token endpoint checks.
pub async fn issue_code(
    pool: &AnyPool,
    request: &AuthorizationRequest,
    subject: &CodeSubject<'_>,
    now: i64,
    ttl_secs: u64,
) -> anyhow::Result<Secret> {
    let code = Secret::generate();
    let ttl = i64::try_from(ttl_secs).context("Code lifetime overflows")?;
    let record = CodeRecord {
        client_id: request.client_id.clone(),
        user_id: subject.user_id.to_owned(),
        redirect_uri: request.reply.redirect_uri.clone(),
        scope: request.scope.to_string(),
        nonce: request.nonce.clone(),
        code_challenge: request
            .code_challenge
            .as_ref()
            .map(|c| c.as_ref().to_owned()),
        auth_time: subject.auth_time,
        amr: subject.amr.stored(),
        session_id: subject.sid.to_owned(),
        expires_at: now + ttl,
    };
    codes::insert(pool, &code.hash(), &record, now).await?;
    tracing::info!(client_id = %request.client_id, user_id = subject.user_id, "Authorization code issued");
    Ok(code)
}

/// Serde for [`Scope`] as its space-separated text (requests wait in the session).
mod scope_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::oauth::Scope;

    pub fn serialize<S: Serializer>(scope: &Scope, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(scope)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
        let text = String::deserialize(d)?;
        Scope::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde for an optional [`CodeChallenge`] as its text.
mod challenge_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::oauth::pkce::CodeChallenge;

    pub fn serialize<S: Serializer>(
        challenge: &Option<CodeChallenge>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match challenge {
            Some(c) => s.serialize_some(c.as_ref()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CodeChallenge>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                CodeChallenge::parse(&text)
                    .ok_or_else(|| serde::de::Error::custom("invalid stored code challenge"))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Params {
        Params::from_urlencoded(query.as_bytes())
    }

    fn request(
        prompt: Prompt,
        max_age: Option<u64>,
        expected: Option<&str>,
    ) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "c".into(),
            reply: ReplyTo {
                redirect_uri: "https://rp.example/cb".into(),
                state: None,
            },
            scope: Scope::parse("openid email").unwrap(),
            nonce: None,
            code_challenge: None,
            prompt,
            max_age,
            expected_subject: expected.map(str::to_owned),
            login_hint: None,
            wants_mfa: false,
        }
    }

    const INTERACTIVE: Prompt = Prompt::Interactive {
        force_login: false,
        force_consent: false,
    };

    #[test]
    fn empty_values_count_as_omitted_and_repeats_are_found() {
        let p = params("a=&a=1&b=2&c=3&c=4");
        assert_eq!(p.value("a").unwrap(), Some("1"));
        assert!(p.value("c").is_err());
        assert!(p.any_repeated());
        assert!(!params("a=1&b=2&a=").any_repeated());
    }

    #[test]
    fn replies_keep_the_registered_uri_and_encode_state_exactly() {
        let reply = ReplyTo {
            redirect_uri: "https://rp.example/cb?x=1".into(),
            state: Some("a b&c=d/é".into()),
        };
        let url = reply.with_error(
            &OAuthError::bare(ErrorCode::AccessDenied),
            "https://id.example",
        );
        assert_eq!(
            url,
            "https://rp.example/cb?x=1&error=access_denied&state=a+b%26c%3Dd%2F%C3%A9&iss=https%3A%2F%2Fid.example"
        );
        let parsed = url::Url::parse(&url).unwrap();
        let state = parsed.query_pairs().find(|(k, _)| k == "state").unwrap().1;
        assert_eq!(state, "a b&c=d/é");
    }

    #[test]
    fn prompt_values_are_parsed_strictly() {
        assert_eq!(
            check_prompt(&params("prompt=none")).unwrap(),
            Prompt::NoInteraction
        );
        assert_eq!(
            check_prompt(&params("prompt=login+consent")).unwrap(),
            Prompt::Interactive {
                force_login: true,
                force_consent: true
            }
        );
        assert!(check_prompt(&params("prompt=none+login")).is_err());
        assert!(check_prompt(&params("prompt=bogus")).is_err());
    }

    #[test]
    fn max_age_must_be_a_non_negative_integer() {
        assert_eq!(check_max_age(&params("max_age=0")).unwrap(), Some(0));
        assert_eq!(
            check_max_age(&params("max_age=99999999999999999999999")).unwrap(),
            Some(u64::MAX)
        );
        for bad in ["max_age=-1", "max_age=1.5", "max_age=abc", "max_age=+3"] {
            assert!(check_max_age(&params(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn sign_in_is_needed_when_forced_too_old_or_someone_else() {
        let user = Authentication {
            user_id: "u1",
            auth_time: 1_000,
            mfa: false,
            can_step_up: false,
        };
        let step =
            |r: &AuthorizationRequest, fresh| authentication(r, Some(&user), fresh, false, 1_100);
        assert_eq!(
            step(&request(INTERACTIVE, None, None), false),
            Ok(AuthenticationStep::Done)
        );
        let login = Prompt::Interactive {
            force_login: true,
            force_consent: false,
        };
        assert_eq!(
            step(&request(login, None, None), false),
            Ok(AuthenticationStep::SignIn)
        );
        assert_eq!(
            step(&request(login, None, None), true),
            Ok(AuthenticationStep::Done)
        );
        assert_eq!(
            step(&request(INTERACTIVE, Some(100), None), false),
            Ok(AuthenticationStep::Done)
        );
        assert_eq!(
            step(&request(INTERACTIVE, Some(99), None), false),
            Ok(AuthenticationStep::SignIn)
        );
        assert_eq!(
            step(&request(INTERACTIVE, Some(0), None), true),
            Ok(AuthenticationStep::Done)
        );
        assert_eq!(
            step(&request(INTERACTIVE, None, Some("u2")), false),
            Ok(AuthenticationStep::SignIn)
        );
        assert_eq!(
            step(&request(Prompt::NoInteraction, None, Some("u2")), false)
                .unwrap_err()
                .code,
            ErrorCode::LoginRequired
        );
        assert_eq!(
            authentication(
                &request(Prompt::NoInteraction, None, None),
                None,
                false,
                false,
                0
            )
            .unwrap_err()
            .code,
            ErrorCode::LoginRequired
        );
    }

    #[test]
    fn acr_values_asking_for_mfa_steps_a_password_sign_in_up() {
        assert!(wants_mfa(&params("acr_values=urn%3Aidp%3Aacr%3Amfa")));
        assert!(wants_mfa(&params(
            "acr_values=urn%3Aother+urn%3Aidp%3Aacr%3Amfa+urn%3Aidp%3Aacr%3Apwd"
        )));
        assert!(!wants_mfa(&params(
            "acr_values=urn%3Aidp%3Aacr%3Apwd+urn%3Aidp%3Aacr%3Amfa"
        )));
        assert!(!wants_mfa(&params("acr_values=urn%3Aother")));

        let asking = AuthorizationRequest {
            wants_mfa: true,
            ..request(INTERACTIVE, None, None)
        };
        let user = |mfa, can_step_up| Authentication {
            user_id: "u1",
            auth_time: 1_000,
            mfa,
            can_step_up,
        };
        let step = |r: &AuthorizationRequest, u: &Authentication<'_>| {
            authentication(r, Some(u), false, false, 1_100)
        };
        assert_eq!(
            step(&asking, &user(false, true)),
            Ok(AuthenticationStep::SecondFactor)
        );
        assert_eq!(
            step(&asking, &user(true, true)),
            Ok(AuthenticationStep::Done)
        );
        assert_eq!(
            step(&asking, &user(false, false)),
            Ok(AuthenticationStep::Done),
            "nothing to step up with: voluntary, the acr claim tells"
        );
        let silent = AuthorizationRequest {
            prompt: Prompt::NoInteraction,
            ..asking
        };
        assert_eq!(
            step(&silent, &user(false, true)).unwrap_err().code,
            ErrorCode::InteractionRequired
        );

        // Required by the client or the idp: the same, but nobody passes without one.
        let plain = request(INTERACTIVE, None, None);
        let required = |u: &Authentication<'_>| authentication(&plain, Some(u), false, true, 1_100);
        assert_eq!(
            required(&user(false, true)),
            Ok(AuthenticationStep::SecondFactor)
        );
        assert_eq!(required(&user(true, true)), Ok(AuthenticationStep::Done));
        assert_eq!(
            required(&user(false, false)),
            Ok(AuthenticationStep::AddSecondFactor)
        );
        let silent = request(Prompt::NoInteraction, None, None);
        assert_eq!(
            authentication(&silent, Some(&user(false, false)), false, true, 1_100)
                .unwrap_err()
                .code,
            ErrorCode::UnmetAuthenticationRequirements
        );
    }
}
