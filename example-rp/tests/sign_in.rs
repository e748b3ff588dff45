//! The example relying party against the real idp and the real resource server, all
//! in this process on port 0: a person clicks Sign in, signs in and consents at the idp,
//! lands back signed in with the verified claims and the resource server's `/users/me`
//! answer, then signs out at the idp and comes back. Runs on the backend the suite
//! selects (SQLite by default, PostgreSQL with TEST_DATABASE=postgres).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp::oauth::Scope;
use idp::oauth::clients::{
    ClientType, Clients, ConsentPolicy, DEFAULT_SCOPE, GrantType, NewClient, PkcePolicy,
    RedirectUri,
};
use reqwest::Url;
use serde_json::json;
use service_kit::clock::Clock;
use service_kit::testing::{TestDatabase, fresh_database};
use tokio::net::TcpListener;

const AUDIENCE: &str = "http://localhost:4000";
const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

struct World {
    idp: String,
    rp: String,
    _databases: (TestDatabase, TestDatabase),
}

/// The idp, the resource server trusting it, and the example RP registered at the idp
/// as a confidential client.
async fn start_world() -> World {
    // The idp.
    let idp_database = fresh_database("rp_idp").await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp = format!("http://{}", listener.local_addr().unwrap());
    let settings = idp::app::settings::Settings {
        issuer: idp.clone(),
        audience: AUDIENCE.to_owned(),
        database_url: idp_database.url.clone(),
        keys_dir: idp_database.path().join("keys"),
        mail_dir: idp_database.path().join("mail"),
        ..idp::app::settings::Settings::default()
    };
    let app =
        idp::app::startup::Application::build_with_listener(settings, listener, Clock::system())
            .await
            .unwrap();
    let clients = Clients::new(app.db().pool.clone(), Clock::system());
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
    let (client, secret) = clients
        .create(NewClient {
            name: "Example RP".to_owned(),
            client_type: ClientType::Confidential,
            auth_method: None,
            redirect_uris: vec![RedirectUri::parse(&format!("{rp}/callback")).unwrap()],
            post_logout_redirect_uris: vec![RedirectUri::parse(&format!("{rp}/")).unwrap()],
            allowed_scope: Scope::parse(DEFAULT_SCOPE).unwrap(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            consent: ConsentPolicy::Ask,
            pkce: PkcePolicy::Required,
            require_mfa: false,
            backchannel_logout: None,
        })
        .await
        .unwrap();
    let router = example_rp::build(example_rp::Config {
        issuer: idp.clone(),
        client_id: client.id.as_ref().to_owned(),
        client_secret: secret.map(|s| s.expose().to_owned()),
        redirect_uri: format!("{rp}/callback"),
        post_logout_redirect_uri: format!("{rp}/"),
        listen: String::new(),
        resource_server,
        scopes: "openid profile email users:read".to_owned(),
    })
    .await
    .unwrap();
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
        _databases: (idp_database, rs_database),
    }
}

#[tokio::test]
async fn a_person_signs_in_to_the_example_rp_sees_their_profile_and_signs_out() {
    let world = start_world().await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();

    let home = browser.get(&world.rp).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(
        home.text()
            .await
            .unwrap()
            .contains(r#"href="/login">Sign in</a>"#)
    );

    // Sign in: the RP sends the browser to the idp, which brings it back to /callback.
    let callback = follow(&browser, &format!("{}/login", world.rp), &world).await;
    assert!(
        callback
            .as_str()
            .starts_with(&format!("{}/callback?", world.rp))
    );
    let response = browser.get(callback).send().await.unwrap();
    assert_eq!(response.status(), 303, "the RP accepts the response");
    assert_eq!(response.headers()["location"], "/");

    let page = browser
        .get(&world.rp)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<h1>Signed in</h1>"), "{page}");
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
    let page = browser
        .get(&world.rp)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"href="/login">Sign in</a>"#));
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
