//! Helpers for the token-side tests (token, userinfo, revocation, introspection):
//! clients registered straight through the registry, authorization codes inserted
//! straight into storage (so these tests do not depend on /authorize), and form posts
//! authenticated the way each client is registered.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use idp::oauth::Scope;
use idp::oauth::clients::{
    AuthMethod, ClientType, Clients, ConsentPolicy, DEFAULT_SCOPE, GrantType, NewClient,
    PkcePolicy, RedirectUri,
};
use idp::oauth::store::codes::{self, CodeRecord};
use reqwest::Response;
use rsa::sha2::{Digest, Sha256};
use serde_json::Value;
use service_kit::clock::Clock;

use crate::helpers::TestApp;

pub const REDIRECT_URI: &str = "https://rp.example.com/callback";
/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const NONCE: &str = "n-0S6_WzA2Mj";
pub const SESSION_ID: &str = "session-under-test";

/// A registered client and what it needs to authenticate.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub method: AuthMethod,
}

/// What to register; [`ClientSpec::default`] is a confidential `client_secret_basic`
/// client with the code and refresh grants and the default scopes.
pub struct ClientSpec {
    pub client_type: ClientType,
    pub auth_method: Option<AuthMethod>,
    pub grant_types: Vec<GrantType>,
    pub scope: &'static str,
    pub pkce: PkcePolicy,
}

impl Default for ClientSpec {
    fn default() -> Self {
        Self {
            client_type: ClientType::Confidential,
            auth_method: None,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope: DEFAULT_SCOPE,
            pkce: PkcePolicy::Required,
        }
    }
}

pub async fn create_client(app: &TestApp, spec: ClientSpec) -> TestClient {
    let needs_redirect = spec.grant_types.contains(&GrantType::AuthorizationCode);
    let (client, secret) = Clients::new(app.db.pool.clone(), Clock::system())
        .create(NewClient {
            name: "Test client".to_owned(),
            client_type: spec.client_type,
            auth_method: spec.auth_method,
            redirect_uris: if needs_redirect {
                vec![RedirectUri::parse(REDIRECT_URI).unwrap()]
            } else {
                vec![]
            },
            post_logout_redirect_uris: vec![],
            allowed_scope: Scope::parse(spec.scope).unwrap(),
            grant_types: spec.grant_types,
            consent: ConsentPolicy::Skip,
            pkce: spec.pkce,
            require_mfa: false,
            backchannel_logout: None,
        })
        .await
        .unwrap();
    TestClient {
        id: client.id.to_string(),
        secret: secret.map(|s| s.expose().to_owned()),
        method: client.auth_method,
    }
}

/// A confidential `client_secret_basic` client with the code and refresh grants.
pub async fn confidential_client(app: &TestApp) -> TestClient {
    create_client(app, ClientSpec::default()).await
}

pub async fn public_client(app: &TestApp) -> TestClient {
    create_client(
        app,
        ClientSpec {
            client_type: ClientType::Public,
            ..ClientSpec::default()
        },
    )
    .await
}

/// A confidential client for the client_credentials grant only.
pub async fn service_client(app: &TestApp, scope: &'static str) -> TestClient {
    create_client(
        app,
        ClientSpec {
            grant_types: vec![GrantType::ClientCredentials],
            scope,
            ..ClientSpec::default()
        },
    )
    .await
}

/// What an authorization code says; [`CodeSpec::default`] is what /authorize would
/// issue for `openid email profile` with a nonce and an S256 challenge.
pub struct CodeSpec {
    pub scope: &'static str,
    pub nonce: Option<&'static str>,
    pub challenge: Option<&'static str>,
    pub redirect_uri: &'static str,
    /// Seconds from now; negative for an expired code.
    pub expires_in: i64,
}

impl Default for CodeSpec {
    fn default() -> Self {
        Self {
            scope: "openid email profile",
            nonce: Some(NONCE),
            challenge: Some(CHALLENGE),
            redirect_uri: REDIRECT_URI,
            expires_in: 60,
        }
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The `auth_time` of every code issued here.
pub fn auth_time() -> i64 {
    now() - 30
}

/// Stores a code for `user_id` and `client` and returns it in the clear.
pub async fn issue_code(
    app: &TestApp,
    client: &TestClient,
    user_id: &str,
    spec: CodeSpec,
) -> String {
    let code = idp::guards::secrets::random_token(32);
    let now = now();
    codes::insert(
        &app.db.pool,
        &idp::guards::secrets::hash(&code),
        &CodeRecord {
            client_id: client.id.clone(),
            user_id: user_id.to_owned(),
            redirect_uri: spec.redirect_uri.to_owned(),
            scope: spec.scope.to_owned(),
            nonce: spec.nonce.map(str::to_owned),
            code_challenge: spec.challenge.map(str::to_owned),
            auth_time: now - 30,
            amr: "pwd".to_owned(),
            session_id: SESSION_ID.to_owned(),
            expires_at: now + spec.expires_in,
        },
        now,
    )
    .await
    .unwrap();
    code
}

/// How a request authenticates its client.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The client's registered method.
    Registered,
    /// `Authorization: Basic` whatever the registration says.
    Basic,
    /// `client_id` + `client_secret` in the body whatever the registration says.
    Post,
    /// Only `client_id` in the body.
    IdOnly,
    /// Nothing at all.
    Nothing,
}

/// RFC 6749 Appendix B: `application/x-www-form-urlencoded` of one value.
pub fn form_urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `Basic base64(urlencode(id):urlencode(secret))`, as RFC 6749 §2.3.1 asks.
pub fn basic_header(id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form_urlencode(id), form_urlencode(secret));
    format!("Basic {}", STANDARD.encode(pair))
}

/// POSTs a form to `path`, authenticating `client` as `auth` says.
pub async fn post_form(
    app: &TestApp,
    path: &str,
    client: &TestClient,
    auth: Auth,
    params: &[(&str, &str)],
) -> Response {
    let mut form: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut request = app.client.post(app.url(path));
    let auth = match auth {
        Auth::Registered => match client.method {
            AuthMethod::ClientSecretBasic => Auth::Basic,
            AuthMethod::ClientSecretPost => Auth::Post,
            AuthMethod::None => Auth::IdOnly,
        },
        other => other,
    };
    let secret = client.secret.clone().unwrap_or_default();
    match auth {
        Auth::Basic => {
            request = request.header("authorization", basic_header(&client.id, &secret));
        }
        Auth::Post => {
            form.push(("client_id".to_owned(), client.id.clone()));
            form.push(("client_secret".to_owned(), secret));
        }
        Auth::IdOnly => form.push(("client_id".to_owned(), client.id.clone())),
        Auth::Nothing | Auth::Registered => {}
    }
    request.form(&form).send().await.unwrap()
}

pub async fn post_token(app: &TestApp, client: &TestClient, params: &[(&str, &str)]) -> Response {
    post_form(app, "/token", client, Auth::Registered, params).await
}

/// Redeems `code` with the RFC 7636 verifier and the test redirect URI.
pub async fn redeem(app: &TestApp, client: &TestClient, code: &str) -> Response {
    post_token(
        app,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

/// A successful token response's body, after checking it is JSON and not cached.
pub async fn token_body(response: Response) -> Value {
    let status = response.status();
    assert_no_store(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

pub fn assert_no_store(response: &Response) {
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
}

/// Asserts an RFC 6749 §5.2 error: the status, JSON with exactly `error` (and maybe
/// `error_description` of RFC 6749 characters), never cached. Returns the code.
pub async fn oauth_error(response: Response, status: u16) -> String {
    let actual = response.status();
    assert_no_store(&response);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(actual, status, "{body}");
    let object = body.as_object().unwrap();
    assert!(
        object
            .keys()
            .all(|k| k == "error" || k == "error_description"),
        "{body}"
    );
    if let Some(description) = body["error_description"].as_str() {
        assert!(
            description
                .bytes()
                .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
            "{description}"
        );
    }
    body["error"].as_str().unwrap().to_owned()
}

/// A user with tokens from the authorization code flow: registers `email`, a client
/// (per `spec`), issues a code for `scope` and redeems it.
pub struct Signed {
    pub user_id: String,
    pub client: TestClient,
    pub tokens: Value,
}

impl Signed {
    pub fn access_token(&self) -> &str {
        self.tokens["access_token"].as_str().unwrap()
    }

    pub fn refresh_token(&self) -> &str {
        self.tokens["refresh_token"].as_str().unwrap()
    }

    pub fn id_token(&self) -> &str {
        self.tokens["id_token"].as_str().unwrap()
    }
}

pub async fn sign_in(app: &TestApp, email: &str, scope: &'static str) -> Signed {
    let user_id = app.register(email).await;
    let client = confidential_client(app).await;
    sign_in_with(app, user_id, client, scope).await
}

pub async fn sign_in_with(
    app: &TestApp,
    user_id: String,
    client: TestClient,
    scope: &'static str,
) -> Signed {
    let code = issue_code(
        app,
        &client,
        &user_id,
        CodeSpec {
            scope,
            ..CodeSpec::default()
        },
    )
    .await;
    let tokens = token_body(redeem(app, &client, &code).await).await;
    Signed {
        user_id,
        client,
        tokens,
    }
}

/// Refreshes with `refresh_token` and optional extra parameters.
pub async fn refresh(
    app: &TestApp,
    client: &TestClient,
    refresh_token: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut params = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    params.extend_from_slice(extra);
    post_token(app, client, &params).await
}

/// GET /userinfo with `Authorization: Bearer token`.
pub async fn get_userinfo(app: &TestApp, token: &str) -> Response {
    app.client
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// `at_hash` computed independently (OIDC Core §3.1.3.6).
pub fn expected_at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Sets the display name of `email`'s account as its owner would: signed in through
/// the JSON API, `PATCH /auth/me`.
pub async fn set_name(app: &TestApp, email: &str, name: &str) {
    let response = app
        .client
        .patch(app.url("/auth/me"))
        .bearer_auth(app.login(email).await)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
