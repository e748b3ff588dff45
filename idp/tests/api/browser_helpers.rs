//! Helpers for the browser-side tests (`/authorize`, the sign-in and consent pages,
//! `/logout`): a cookie-keeping client that never follows redirects, clients registered
//! through the registry, authorization requests built parameter by parameter, a tiny
//! reader for hidden form fields, and the whole sign-in walked page by page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idp::keys::{KeyEncryptionKey, KeyRing};
use idp::oauth::Scope;
use idp::oauth::clients::{
    ClientType, Clients, ConsentPolicy, DEFAULT_SCOPE, GrantType, NewClient, PkcePolicy,
    RedirectUri,
};
use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use reqwest::Response;
use serde_json::Value;
use service_kit::clock::Clock;

use crate::helpers::{PASSWORD, TestApp};

pub const REDIRECT_URI: &str = "https://rp.example/callback";
pub const POST_LOGOUT_REDIRECT_URI: &str = "https://rp.example/signed-out";
/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A browser: keeps cookies, never follows redirects (each hop is asserted).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// A registered client.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub name: String,
}

/// Registers a confidential client (code + refresh grants, PKCE required, consent
/// asked, redirect [`REDIRECT_URI`], post-logout [`POST_LOGOUT_REDIRECT_URI`]), after
/// `customise` had a go at it.
pub async fn register_client(app: &TestApp, customise: impl FnOnce(&mut NewClient)) -> TestClient {
    let mut new = NewClient {
        name: "Photo Printer".to_owned(),
        client_type: ClientType::Confidential,
        auth_method: None,
        redirect_uris: vec![RedirectUri::parse(REDIRECT_URI).unwrap()],
        post_logout_redirect_uris: vec![RedirectUri::parse(POST_LOGOUT_REDIRECT_URI).unwrap()],
        allowed_scope: Scope::parse(DEFAULT_SCOPE).unwrap(),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        consent: ConsentPolicy::Ask,
        pkce: PkcePolicy::Required,
        require_mfa: false,
        backchannel_logout: None,
    };
    customise(&mut new);
    let (client, _secret) = Clients::new(app.db.pool.clone(), Clock::system())
        .create(new)
        .await
        .unwrap();
    TestClient {
        id: client.id.to_string(),
        name: client.name,
    }
}

/// An authorization request, parameter by parameter (order and repetition kept).
#[derive(Clone, Debug)]
pub struct AuthRequest(Vec<(String, String)>);

impl AuthRequest {
    /// `response_type=code`, the client, [`REDIRECT_URI`], `scope=openid email`,
    /// `state=af0ifjsldkj`, `nonce`, and an S256 challenge.
    pub fn new(client: &TestClient) -> Self {
        Self(
            [
                ("response_type", "code"),
                ("client_id", client.id.as_str()),
                ("redirect_uri", REDIRECT_URI),
                ("scope", "openid email"),
                ("state", "af0ifjsldkj"),
                ("nonce", "n-0S6_WzA2Mj"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        )
    }

    /// Sets `name` (replacing any value).
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.0.retain(|(k, _)| k != name);
        self.0.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn remove(mut self, name: &str) -> Self {
        self.0.retain(|(k, _)| k != name);
        self
    }

    /// Adds another `name` (a repeated parameter if it was there already).
    pub fn add(mut self, name: &str, value: &str) -> Self {
        self.0.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn encoded(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.0)
            .finish()
    }

    pub fn url(&self, app: &TestApp) -> String {
        app.url(&format!("/authorize?{}", self.encoded()))
    }
}

pub async fn get(browser: &reqwest::Client, url: &str) -> Response {
    browser.get(url).send().await.unwrap()
}

/// `GET /authorize` with `request`.
pub async fn authorize(
    app: &TestApp,
    browser: &reqwest::Client,
    request: &AuthRequest,
) -> Response {
    get(browser, &request.url(app)).await
}

/// The `Location` of a redirect (asserting it is a 303), made absolute against the app.
pub fn location(app: &TestApp, response: &Response) -> String {
    assert_eq!(
        response.status(),
        303,
        "expected a 303 redirect from {}",
        response.url()
    );
    let location = response.headers()["location"].to_str().unwrap();
    if location.starts_with('/') {
        app.url(location)
    } else {
        location.to_owned()
    }
}

/// The query parameters of a URL, in order.
pub fn query(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The `value` of the hidden input `name` in a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// Undoes askama's HTML escaping of an attribute value.
pub fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let end = rest[amp..].find(';').expect("a terminated entity") + amp;
        let entity = &rest[amp + 1..end];
        let decoded = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let number = entity.strip_prefix('#').expect("a known entity");
                let code = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
                    None => number.parse().unwrap(),
                };
                char::from_u32(code).unwrap()
            }
        };
        out.push(decoded);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

pub fn csrf_token(html: &str) -> String {
    hidden(html, "csrf_token").expect("a csrf_token field")
}

/// A page (status 200, HTML) and its body.
pub async fn page(browser: &reqwest::Client, url: &str) -> String {
    let response = get(browser, url).await;
    assert_eq!(response.status(), 200, "GET {url}");
    response.text().await.unwrap()
}

/// Posts a form with this page's CSRF token added.
pub async fn post_form(browser: &reqwest::Client, url: &str, fields: &[(&str, &str)]) -> Response {
    browser.post(url).form(fields).send().await.unwrap()
}

/// On the login page at `login_url`: the CSRF token, email and [`PASSWORD`]. Returns
/// the answer to the POST.
pub async fn submit_login(
    app: &TestApp,
    browser: &reqwest::Client,
    login_url: &str,
    email: &str,
) -> Response {
    let html = page(browser, login_url).await;
    let mut fields = vec![
        ("csrf_token".to_owned(), csrf_token(&html)),
        ("email".to_owned(), email.to_owned()),
        ("password".to_owned(), PASSWORD.to_owned()),
    ];
    if let Some(request) = hidden(&html, "request") {
        fields.push(("request".to_owned(), request));
    }
    browser
        .post(app.url("/login"))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

/// On the consent page at `consent_url`: presses `decision` (`allow` or `deny`).
pub async fn submit_consent(
    app: &TestApp,
    browser: &reqwest::Client,
    consent_url: &str,
    decision: &str,
) -> Response {
    let html = page(browser, consent_url).await;
    let csrf = csrf_token(&html);
    let request = hidden(&html, "request").expect("a request field");
    post_form(
        browser,
        &app.url("/consent"),
        &[
            ("csrf_token", &csrf),
            ("request", &request),
            ("decision", decision),
        ],
    )
    .await
}

/// Walks a whole sign-in: `/authorize` -> login page -> credentials ->
/// `/authorize/continue` -> consent page (when shown) -> allow -> the client's redirect
/// URI. Returns that final URL (with `code`, `state`, `iss`).
pub async fn sign_in_and_authorize(
    app: &TestApp,
    browser: &reqwest::Client,
    request: &AuthRequest,
    email: &str,
) -> String {
    let login = location(app, &authorize(app, browser, request).await);
    assert!(login.starts_with(&app.url("/login?request=")), "{login}");
    let after_login = submit_login(app, browser, &login, email).await;
    let next = location(app, &after_login);
    assert!(
        next.starts_with(&app.url("/authorize/continue?request=")),
        "{next}"
    );
    let mut next = location(app, &get(browser, &next).await);
    if next.starts_with(&app.url("/consent?")) {
        next = location(app, &submit_consent(app, browser, &next, "allow").await);
    }
    assert!(next.starts_with(REDIRECT_URI), "{next}");
    next
}

/// Signs `email` in at `/login` directly (no authorization request).
pub async fn sign_in(app: &TestApp, browser: &reqwest::Client, email: &str) {
    let response = submit_login(app, browser, &app.url("/login"), email).await;
    assert_eq!(response.headers()["location"], "/");
}

/// Signs ID-token-shaped claims with the idp's own current key (as the token endpoint
/// would), so tests can present an `id_token_hint` without going through `/token`.
pub async fn sign_with_idp_key(app: &TestApp, claims: &Value) -> String {
    let kek = KeyEncryptionKey::load_or_create(None, &app.database.path().join("keys")).unwrap();
    let keys = KeyRing::load_or_create(&app.db.pool, &kek, 0)
        .await
        .unwrap();
    let key = keys.signing_key();
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(key.kid.clone());
    let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
    jwt::encode_with_signer(&payload, &header, &key.signer).unwrap()
}

/// Signs JSON texts as given (a header without `kid`, which this adds, and a payload)
/// with the idp's own current key: texts a `Value` could not express, such as a member
/// named twice.
pub async fn sign_text_with_idp_key(app: &TestApp, header: &str, payload: &str) -> String {
    let kek = KeyEncryptionKey::load_or_create(None, &app.database.path().join("keys")).unwrap();
    let keys = KeyRing::load_or_create(&app.db.pool, &kek, 0)
        .await
        .unwrap();
    let key = keys.signing_key();
    let header = header.replacen('{', &format!(r#"{{"kid":"{}","#, key.kid), 1);
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = josekit::jws::JwsSigner::sign(&key.signer, input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Signs claims with a fresh key that merely claims the idp's kid.
pub async fn sign_with_foreign_key(app: &TestApp, claims: &Value) -> String {
    let kek = KeyEncryptionKey::load_or_create(None, &app.database.path().join("keys")).unwrap();
    let keys = KeyRing::load_or_create(&app.db.pool, &kek, 0)
        .await
        .unwrap();
    let pair = RS256.generate_key_pair(2048).unwrap();
    let signer = RS256
        .signer_from_der(josekit::jwk::KeyPair::to_der_private_key(&pair))
        .unwrap();
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(keys.signing_key().kid.clone());
    let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
    jwt::encode_with_signer(&payload, &header, &signer).unwrap()
}

/// An `id_token_hint` for `sub` issued to `client` by this idp, long expired.
pub async fn expired_id_token(app: &TestApp, client: &TestClient, sub: &str) -> String {
    sign_with_idp_key(
        app,
        &serde_json::json!({
            "iss": app.issuer,
            "sub": sub,
            "aud": client.id,
            "iat": 1_000_000_000,
            "exp": 1_000_000_600,
        }),
    )
    .await
}

/// The `Set-Cookie` headers of a response.
pub fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The session cookie's `name=value` from a response, if it sets one.
pub fn session_cookie(response: &Response) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|c| c.contains("idp_session="))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

/// A base64url SHA-256 challenge for `verifier` (RFC 7636 S256).
pub fn challenge_for(verifier: &str) -> String {
    use rsa::sha2::{Digest, Sha256};
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Asserts the browser security headers and `no-store` on an HTML response.
pub fn assert_page_headers(response: &Response, what: &str) {
    let headers = response.headers();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{what}: HTML"
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["cache-control"], "no-store", "{what}");
}
