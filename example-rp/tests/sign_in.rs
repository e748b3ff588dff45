//! The example relying party against the real idp and the real resource server, all
//! in this process on port 0: a person clicks Sign in, signs in and consents at the idp,
//! lands back signed in with the verified claims and the resource server's `/users/me`
//! answer, then signs out at the idp and comes back; and a session ended at the idp
//! ends the RP's session through back-channel logout, while forged, replayed or
//! misaddressed logout tokens end nothing. Runs on the backend the suite selects
//! (SQLite by default, PostgreSQL with TEST_DATABASE=postgres).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use idp::keys::signing::TokenIssuer;
use idp::keys::{KeyEncryptionKey, KeyRing};
use idp::oauth::Scope;
use idp::oauth::clients::{
    BackchannelLogout, ClientType, Clients, ConsentPolicy, DEFAULT_SCOPE, GrantType, NewClient,
    PkcePolicy, RedirectUri,
};
use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use reqwest::Url;
use serde_json::{Value, json};
use service_kit::clock::Clock;
use service_kit::testing::{TestDatabase, fresh_database};
use tokio::net::TcpListener;

const AUDIENCE: &str = "http://localhost:4000";
const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

struct World {
    idp: String,
    rp: String,
    client_id: String,
    /// The idp's keys, to sign logout tokens the idp itself would not send.
    idp_keys: KeyRing,
    _databases: (TestDatabase, TestDatabase),
}

/// The idp, the resource server trusting it, and the example RP registered at the idp
/// as a confidential client that takes back-channel logout tokens.
async fn start_world() -> World {
    // The idp.
    let idp_database = fresh_database("rp_idp").await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp = format!("http://{}", listener.local_addr().unwrap());
    let settings = idp::app::settings::Settings {
        issuer: idp.clone(),
        audience: AUDIENCE.to_owned(),
        database_url: idp_database.url.clone(),
        keys_dir: settings_keys_dir(&idp_database),
        mail_dir: idp_database.path().join("mail"),
        ..idp::app::settings::Settings::default()
    };
    let app =
        idp::app::startup::Application::build_with_listener(settings, listener, Clock::system())
            .await
            .unwrap();
    let clients = Clients::new(app.db().pool.clone(), Clock::system());
    let kek = KeyEncryptionKey::load_or_create(None, &settings_keys_dir(&idp_database)).unwrap();
    let idp_keys = KeyRing::load_or_create(&app.db().pool, &kek, 0)
        .await
        .unwrap();
    tokio::spawn(app.run_until(std::future::pending()));

    // The resource server.
    let rs_database = fresh_database("rp_rs").await;
    let rs = resource_server::startup::Application::build(resource_server::Settings {
        listen: "127.0.0.1:0".to_owned(),
        issuer: idp.clone(),
        audience: AUDIENCE.to_owned(),
        database_url: rs_database.url.clone(),
        ..resource_server::Settings::default()
    })
    .await
    .unwrap();
    let resource_server = format!("http://127.0.0.1:{}", rs.port());
    tokio::spawn(rs.run_until(std::future::pending()));

    // The example RP, registered the way docs/example-rp.md says.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rp = format!("http://{}", listener.local_addr().unwrap());
    let redirect_uris = vec![RedirectUri::parse(&format!("{rp}/callback")).unwrap()];
    let backchannel_logout_uri = format!("{rp}/backchannel-logout");
    let (client, secret) = clients
        .create(NewClient {
            name: "Example RP".to_owned(),
            client_type: ClientType::Confidential,
            auth_method: None,
            backchannel_logout: Some(
                BackchannelLogout::parse(&backchannel_logout_uri, true, &redirect_uris).unwrap(),
            ),
            redirect_uris,
            post_logout_redirect_uris: vec![RedirectUri::parse(&format!("{rp}/")).unwrap()],
            allowed_scope: Scope::parse(DEFAULT_SCOPE).unwrap(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            consent: ConsentPolicy::Ask,
            pkce: PkcePolicy::Required,
            require_mfa: false,
        })
        .await
        .unwrap();
    let config = example_rp::Config {
        issuer: idp.clone(),
        client_id: client.id.as_ref().to_owned(),
        client_secret: secret.map(|s| s.expose().to_owned()),
        redirect_uri: format!("{rp}/callback"),
        post_logout_redirect_uri: format!("{rp}/"),
        listen: String::new(),
        resource_server,
        scopes: "openid profile email users:read".to_owned(),
    };
    assert_eq!(
        config.backchannel_logout_uri().unwrap(),
        backchannel_logout_uri,
        "what the RP says to register is where it listens"
    );
    let router = example_rp::build(config).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let response = reqwest::Client::new()
        .post(format!("{idp}/auth/register"))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    World {
        idp,
        rp,
        client_id: client.id.as_ref().to_owned(),
        idp_keys,
        _databases: (idp_database, rs_database),
    }
}

fn settings_keys_dir(database: &TestDatabase) -> std::path::PathBuf {
    database.path().join("keys")
}

#[tokio::test]
async fn a_person_signs_in_to_the_example_rp_sees_their_profile_and_signs_out() {
    let world = start_world().await;
    let browser = browser();

    assert!(is_signed_out(&home(&world, &browser).await));

    let page = sign_in(&world, &browser).await;
    assert!(
        page.contains(&format!("&#34;email&#34;: &#34;{EMAIL}&#34;")),
        "the verified claims: {page}"
    );
    assert!(
        page.contains("/users/me</code> &rarr; 200 OK"),
        "the resource server accepted the access token: {page}"
    );
    assert!(page.contains("&#34;bio&#34;:"), "a profile: {page}");

    // Sign out: RP-initiated logout at the idp, then back to the RP with the state.
    let response = browser
        .post(format!("{}/logout", world.rp))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let end_session = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(end_session.starts_with(&format!("{}/logout?", world.idp)));
    assert!(end_session.contains("id_token_hint="));
    let back = follow(&browser, &end_session, &world).await;
    assert!(
        back.as_str().starts_with(&format!("{}/?", world.rp)),
        "{back}"
    );
    let page = browser
        .get(back)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("You are signed out"), "{page}");
    assert!(is_signed_out(&home(&world, &browser).await));
}

#[tokio::test]
async fn ending_the_session_at_the_idp_ends_the_rp_session_through_back_channel_logout() {
    let world = start_world().await;
    // Two browsers, two idp sessions, one person.
    let (first, second) = (browser(), browser());
    let page = sign_in(&world, &first).await;
    let sid = shown_claim(&page, "sid");
    let sub = shown_claim(&page, "sub");
    let other_sid = shown_claim(&sign_in(&world, &second).await, "sid");
    assert_ne!(sid, other_sid);

    // The person signs out at the idp itself; the idp posts a logout token to the RP,
    // asynchronously, and the RP ends the session made in that idp session only.
    sign_out_at_the_idp(&world, &first).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !is_signed_out(&home(&world, &first).await) {
        assert!(
            Instant::now() < deadline,
            "the RP session outlived the idp session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        is_signed_in(&home(&world, &second).await),
        "the other session stays"
    );

    // A token with only `sub` ends every session of that person.
    let token = sign_as_idp(&world, logout_claims(&world, "by-sub", None, Some(&sub))).await;
    let (status, _) = post_logout_token(&world, &token).await;
    assert_eq!(status, 200);
    assert!(is_signed_out(&home(&world, &second).await));
}

#[tokio::test]
async fn forged_misaddressed_and_replayed_logout_tokens_end_nothing() {
    let world = start_world().await;
    let browser = browser();
    let page = sign_in(&world, &browser).await;
    let (sid, sub) = (shown_claim(&page, "sid"), shown_claim(&page, "sub"));
    let valid = |jti: &str| logout_claims(&world, jti, Some(&sid), Some(&sub));

    let forged = sign_with_a_fresh_key(&world.idp_keys.signing_key().kid, valid("forged"));
    let mut with_nonce = valid("with-nonce");
    with_nonce.insert("nonce".to_owned(), json!("n-0S6_WzA2Mj"));
    let mut for_another_client = valid("for-another-client");
    for_another_client.insert("aud".to_owned(), json!("c_another_client"));
    // Each refused for its own reason, which the description names.
    let refused = [
        (forged, "signature does not verify"),
        (sign_as_idp(&world, with_nonce).await, "has a nonce"),
        (
            sign_as_idp(&world, for_another_client).await,
            "not for this client",
        ),
    ];
    for (token, reason) in refused {
        let (status, body) = post_logout_token(&world, &token).await;
        assert_eq!(status, 400, "{reason}: {body}");
        assert_eq!(body["error"], "invalid_request", "{reason}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(reason), "{reason}: {description}");
    }

    // A replay: the first time is fine (it names an idp session the RP never saw), the
    // second is refused, though only its jti gives it away.
    let token = sign_as_idp(
        &world,
        logout_claims(&world, "once", Some("sid-elsewhere"), None),
    )
    .await;
    assert_eq!(post_logout_token(&world, &token).await.0, 200);
    let (status, body) = post_logout_token(&world, &token).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );

    // Not a form with a logout_token at all.
    let response = reqwest::Client::new()
        .post(format!("{}/backchannel-logout", world.rp))
        .json(&json!({ "logout_token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["cache-control"], "no-store");

    assert!(
        is_signed_in(&home(&world, &browser).await),
        "no refused token ended the session"
    );
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Signs in through the RP: the RP sends the browser to the idp, which brings it back
/// to /callback. Returns the RP's home page afterwards.
async fn sign_in(world: &World, browser: &reqwest::Client) -> String {
    let callback = follow(browser, &format!("{}/login", world.rp), world).await;
    assert!(
        callback
            .as_str()
            .starts_with(&format!("{}/callback?", world.rp))
    );
    let response = browser.get(callback).send().await.unwrap();
    assert_eq!(response.status(), 303, "the RP accepts the response");
    assert_eq!(response.headers()["location"], "/");
    let page = home(world, browser).await;
    assert!(is_signed_in(&page), "{page}");
    page
}

async fn home(world: &World, browser: &reqwest::Client) -> String {
    let response = browser.get(&world.rp).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

fn is_signed_in(page: &str) -> bool {
    page.contains("<h1>Signed in</h1>")
}

fn is_signed_out(page: &str) -> bool {
    page.contains(r#"href="/login">Sign in</a>"#)
}

/// A string claim of the ID token, as the RP's signed-in page shows it.
fn shown_claim(page: &str, name: &str) -> String {
    let key = format!("&#34;{name}&#34;: &#34;");
    let start = page
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + key.len();
    let end = start + page[start..].find("&#34;").unwrap();
    page[start..end].to_owned()
}

/// Signs out on the idp's own `/logout` page, as a person there would.
async fn sign_out_at_the_idp(world: &World, browser: &reqwest::Client) {
    let url = Url::parse(&format!("{}/logout", world.idp)).unwrap();
    let html = browser
        .get(url.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (at, _, _, _) = submit_buttons(&html)
        .into_iter()
        .find(|(_, _, _, label)| label == "Sign out")
        .unwrap_or_else(|| panic!("no Sign out button in {html}"));
    let (form, action) = form_around(&html, at);
    let response = browser
        .post(url.join(&action).unwrap())
        .form(&hidden_fields(form))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the idp's signed-out page");
}

/// A logout token's claims as the idp writes them (Back-Channel Logout 1.0 §2.4).
fn logout_claims(
    world: &World,
    jti: &str,
    sid: Option<&str>,
    sub: Option<&str>,
) -> serde_json::Map<String, Value> {
    let now = Clock::system().now().timestamp();
    let Value::Object(mut claims) = json!({
        "iss": world.idp,
        "aud": world.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": jti,
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    }) else {
        unreachable!()
    };
    if let Some(sid) = sid {
        claims.insert("sid".to_owned(), sid.into());
    }
    if let Some(sub) = sub {
        claims.insert("sub".to_owned(), sub.into());
    }
    claims
}

/// Signed with the idp's current key, as the idp signs its logout tokens.
async fn sign_as_idp(world: &World, claims: serde_json::Map<String, Value>) -> String {
    TokenIssuer::new(&world.idp, world.idp_keys.clone(), Clock::system())
        .sign("logout+jwt", claims)
        .await
        .unwrap()
}

/// Signed with a fresh key that merely claims to be the idp's key `kid`.
fn sign_with_a_fresh_key(kid: &str, claims: serde_json::Map<String, Value>) -> String {
    let pair = RS256.generate_key_pair(2048).unwrap();
    let signer = RS256
        .signer_from_der(josekit::jwk::KeyPair::to_der_private_key(&pair))
        .unwrap();
    let mut header = JwsHeader::new();
    header.set_token_type("logout+jwt");
    header.set_key_id(kid);
    jwt::encode_with_signer(&JwtPayload::from_map(claims).unwrap(), &header, &signer).unwrap()
}

/// Posts a logout token as the idp does; the status and the JSON body (if any). Every
/// answer must be uncacheable (§2.8).
async fn post_logout_token(world: &World, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/backchannel-logout", world.rp))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Follows redirects from `start` and fills the idp's pages like a person: the login
/// form, the consent page's allow button, the logout confirmation. Returns the first
/// URL on the RP that is not `/login`.
async fn follow(browser: &reqwest::Client, start: &str, world: &World) -> Url {
    let mut url = Url::parse(start).unwrap();
    let mut response = browser.get(url.clone()).send().await.unwrap();
    for _ in 0..12 {
        if response.status().is_redirection() {
            url = url
                .join(response.headers()["location"].to_str().unwrap())
                .unwrap();
            if url.as_str().starts_with(&format!("{}/", world.rp)) && url.path() != "/login" {
                return url;
            }
            response = browser.get(url.clone()).send().await.unwrap();
            continue;
        }
        let status = response.status();
        let html = response.text().await.unwrap();
        assert_eq!(status, 200, "{url}: {html}");
        assert!(
            url.as_str().starts_with(&format!("{}/", world.idp)),
            "{url}: {html}"
        );
        // The form to submit: the login form, or the one with the button to press.
        let (at, button) = if let Some(at) = html.find(r#"name="password""#) {
            (at, None)
        } else {
            let button = submit_buttons(&html)
                .into_iter()
                .find(|(_, _, value, text)| {
                    let label = format!("{value} {text}").to_lowercase();
                    ["allow", "sign out", "log out", "yes"]
                        .iter()
                        .any(|w| label.contains(w))
                })
                .unwrap_or_else(|| panic!("{url}: nothing to press in {html}"));
            (button.0, Some(button))
        };
        let (form, action) = form_around(&html, at);
        let mut fields = hidden_fields(form);
        match button {
            None => {
                fields.push(("email".to_owned(), EMAIL.to_owned()));
                fields.push(("password".to_owned(), PASSWORD.to_owned()));
            }
            Some((_, Some(name), value, _)) => fields.push((name, value)),
            Some(_) => {}
        }
        let action = url.join(&action).unwrap();
        response = browser
            .post(action.clone())
            .form(&fields)
            .send()
            .await
            .unwrap();
        url = action;
    }
    panic!("no way back to the RP from {start}");
}

// A few lines of HTML reading, enough for the idp's own forms.

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + tag[start..].find('"')?;
    Some(
        tag[start..end]
            .replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    html.match_indices(&open)
        .filter_map(|(i, _)| html[i..].find('>').map(|end| &html[i..i + end + 1]))
        .collect()
}

fn hidden_fields(html: &str) -> Vec<(String, String)> {
    tags(html, "input")
        .into_iter()
        .filter(|t| attribute(t, "type").as_deref() == Some("hidden"))
        .filter_map(|t| {
            Some((
                attribute(t, "name")?,
                attribute(t, "value").unwrap_or_default(),
            ))
        })
        .collect()
}

/// `(offset, name, value, label)` of each `<button>` that submits.
fn submit_buttons(html: &str) -> Vec<(usize, Option<String>, String, String)> {
    html.match_indices("<button")
        .filter_map(|(i, _)| {
            let tag_end = i + html[i..].find('>')?;
            let tag = &html[i..=tag_end];
            let text_end = tag_end + html[tag_end..].find("</button>")?;
            let submits = attribute(tag, "type").is_none_or(|t| t == "submit");
            submits.then(|| {
                (
                    i,
                    attribute(tag, "name"),
                    attribute(tag, "value").unwrap_or_default(),
                    html[tag_end + 1..text_end].trim().to_owned(),
                )
            })
        })
        .collect()
}

/// The form around offset `at`, and its action.
fn form_around(html: &str, at: usize) -> (&str, String) {
    let start = html[..at].rfind("<form").expect("inside a form");
    let end = at + html[at..].find("</form>").expect("a closed form");
    let form = &html[start..end];
    let action = attribute(tags(form, "form")[0], "action").unwrap_or_default();
    (form, action)
}
