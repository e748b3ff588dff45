//! Two-step sign-in (issue 15): adding an authenticator app with a code computed from
//! the secret the page shows, recovery codes shown once, the second step after the
//! password (not skippable, a code works once even for two requests at once, wrong
//! codes lock without saying so), recovery codes single use and replaced by a new set,
//! removal, and a notice by mail for each change.

use chrono::Duration;
use reqwest::{Client, Response};
use serde_json::{Value, json};
use totp_rs::{Builder, Secret};

use crate::browser_helpers::{AuthRequest, authorize, submit_consent};
use crate::browser_helpers::{
    browser, csrf_token, get, hidden, location, page, post_form, sign_in, submit_login,
};
use crate::helpers::{PASSWORD, TestApp, decode_jwt, error_code};
use crate::oauth_helpers::{redeem, token_body};
use crate::recovery::app_with_sink;
use crate::smtp_sink::SmtpSink;

const EMAIL: &str = "ada@example.com";
const SECOND_STEP: &str = "/login/second-factor";

/// An authenticator app as the test holds it: the secret read from the page.
pub struct Enrolled {
    pub secret: Vec<u8>,
    pub recovery_codes: Vec<String>,
}

impl Enrolled {
    /// The code the app shows at `app`'s time, `steps` steps ahead.
    pub fn code(&self, app: &TestApp, steps: i64) -> String {
        let at = app.clock.now().timestamp() + steps * 30;
        Builder::new()
            .with_secret(Secret::from(self.secret.clone()))
            .build()
            .unwrap()
            .generate(u64::try_from(at).unwrap())
            .to_string()
    }
}

/// The text between `start` and the next `end` in `html`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    let to = html[from..].find(end).unwrap() + from;
    &html[from..to]
}

/// The secret the enrolment page shows as text, decoded.
fn secret_on(html: &str) -> Vec<u8> {
    let base32 = between(html, r#"id="totp-secret">"#, "</code>");
    Secret::try_from_base32(base32).unwrap().as_bytes().to_vec()
}

/// The recovery codes a page shows.
fn codes_on(html: &str) -> Vec<String> {
    html.split("<li><code>")
        .skip(1)
        .map(|rest| rest[..rest.find("</code>").unwrap()].to_owned())
        .collect()
}

/// Adds an authenticator app for the user signed in to `browser`, with the code the
/// app would show; the recovery codes, if this was the first.
pub async fn enrol(app: &TestApp, browser: &Client, name: &str) -> Enrolled {
    let html = page(browser, &app.url("/account/two-step/totp")).await;
    assert!(html.contains(r#"<svg role="img""#), "an inline QR code");
    let secret = secret_on(&html);
    let mut enrolled = Enrolled {
        secret,
        recovery_codes: Vec::new(),
    };
    let response = post_form(
        browser,
        &app.url("/account/two-step/totp"),
        &[
            ("csrf_token", &csrf_token(&html)),
            ("id", &hidden(&html, "id").unwrap()),
            ("name", name),
            ("code", &enrolled.code(app, 0)),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    let status = response.status();
    let html = response.text().await.unwrap();
    if status == 200 {
        enrolled.recovery_codes = codes_on(&html);
    } else {
        assert_eq!(status, 303, "{html}");
    }
    enrolled
}

/// Registers [`EMAIL`], signs in on a fresh browser and adds an app; the browser too.
async fn user_with_an_app(app: &TestApp) -> (Client, Enrolled) {
    app.register(EMAIL).await;
    let browser = browser();
    sign_in(app, &browser, EMAIL).await;
    let enrolled = enrol(app, &browser, "Phone").await;
    // The enrolment used this step's code: the next sign-in needs the next one.
    app.clock.shift(Duration::seconds(30));
    (browser, enrolled)
}

/// The password step on a fresh browser: it must ask for the second factor.
async fn password_step(app: &TestApp) -> Client {
    let browser = browser();
    let response = submit_login(app, &browser, &app.url("/login"), EMAIL).await;
    assert_eq!(location(app, &response), app.url(SECOND_STEP));
    browser
}

/// Posts `code` on the second step's page.
async fn code_step(app: &TestApp, browser: &Client, code: &str) -> Response {
    let html = page(browser, &app.url(SECOND_STEP)).await;
    post_form(
        browser,
        &app.url(SECOND_STEP),
        &[("csrf_token", &csrf_token(&html)), ("code", code)],
    )
    .await
}

async fn signed_in(app: &TestApp, browser: &Client) -> bool {
    get(browser, &app.url("/account")).await.status() == 200
}

async fn subjects(sink: &SmtpSink, subject: &str, count: usize) -> usize {
    sink.wait_for_subject(subject, count).await.len()
}

#[tokio::test]
async fn adding_an_app_takes_its_code_and_the_password_and_shows_recovery_codes_once() {
    let (app, sink) = app_with_sink().await;
    app.register(EMAIL).await;
    let browser = browser();
    sign_in(&app, &browser, EMAIL).await;
    let account = page(&browser, &app.url("/account")).await;
    assert!(account.contains("Off: your password alone signs you in."));

    let html = page(&browser, &app.url("/account/two-step/totp")).await;
    let id = hidden(&html, "id").unwrap();
    let post = |code: String, password: &'static str| {
        let (browser, app, html, id) = (&browser, &app, &html, &id);
        async move {
            post_form(
                browser,
                &app.url("/account/two-step/totp"),
                &[
                    ("csrf_token", &csrf_token(html)),
                    ("id", id),
                    ("name", "Phone"),
                    ("code", &code),
                    ("current_password", password),
                ],
            )
            .await
        }
    };
    let secret = secret_on(&html);
    let enrolled = Enrolled {
        secret,
        recovery_codes: Vec::new(),
    };
    let wrong = post(enrolled.code(&app, 5), PASSWORD).await;
    assert_eq!(wrong.status(), 422);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("not the one the app shows")
    );
    let wrong = post(enrolled.code(&app, 0), "not my password").await;
    assert_eq!(wrong.status(), 422);
    assert!(
        !page(&browser, &app.url("/account"))
            .await
            .contains("On: after")
    );

    let done = post(enrolled.code(&app, 0), PASSWORD).await;
    assert_eq!(done.status(), 200);
    let codes = codes_on(&done.text().await.unwrap());
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| c.len() == 14));

    let two_step = page(&browser, &app.url("/account/two-step")).await;
    assert!(two_step.contains("<strong>Phone</strong>"));
    assert!(two_step.contains("10 of 10 left"));
    assert!(
        !codes.iter().any(|c| two_step.contains(c.as_str())),
        "shown once"
    );
    assert!(
        page(&browser, &app.url("/account"))
            .await
            .contains("On: after")
    );
    let subject = "An authenticator app was added to your account";
    assert_eq!(subjects(&sink, subject, 1).await, 1);

    // A second app: no new recovery codes.
    let second = enrol(&app, &browser, "Tablet").await;
    assert!(second.recovery_codes.is_empty());
    let two_step = page(&browser, &app.url("/account/two-step")).await;
    assert!(two_step.contains("<strong>Tablet</strong>"));
}

#[tokio::test]
async fn after_the_password_the_code_is_asked_and_nothing_is_signed_in_before() {
    let app = crate::helpers::spawn_app().await;
    let (_, enrolled) = user_with_an_app(&app).await;

    let browser = password_step(&app).await;
    assert!(!signed_in(&app, &browser).await, "no account page yet");
    let html = page(&browser, &app.url(SECOND_STEP)).await;
    assert!(html.contains(r#"autocomplete="one-time-code""#));

    let response = code_step(&app, &browser, &enrolled.code(&app, 0)).await;
    assert_eq!(location(&app, &response), app.url("/"));
    assert!(signed_in(&app, &browser).await);

    // Without a right password first, the step is not there.
    let stranger = crate::browser_helpers::browser();
    let response = get(&stranger, &app.url(SECOND_STEP)).await;
    assert_eq!(location(&app, &response), app.url("/login"));
}

#[tokio::test]
async fn a_code_works_once_even_for_two_requests_at_the_same_time() {
    let app = crate::helpers::spawn_app().await;
    let (_, enrolled) = user_with_an_app(&app).await;
    let (first, second) = (password_step(&app).await, password_step(&app).await);
    let code = enrolled.code(&app, 0);
    let (a, b) = tokio::join!(
        code_step(&app, &first, &code),
        code_step(&app, &second, &code)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 422], "exactly one sign-in");

    // Replayed later, still refused; the next step's code works.
    let third = password_step(&app).await;
    assert_eq!(code_step(&app, &third, &code).await.status(), 422);
    app.clock.shift(Duration::seconds(30));
    let response = code_step(&app, &third, &enrolled.code(&app, 0)).await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn wrong_codes_lock_the_second_step_and_the_lock_answers_like_a_wrong_code() {
    let app = crate::helpers::spawn_app().await;
    let (_, enrolled) = user_with_an_app(&app).await;
    let browser = password_step(&app).await;
    let right = enrolled.code(&app, 0);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        assert_eq!(code_step(&app, &browser, wrong).await.status(), 422);
    }
    let locked = code_step(&app, &browser, &right).await;
    assert_eq!(
        locked.status(),
        422,
        "locked: the right code gets the same answer"
    );
    let text = locked.text().await.unwrap();
    assert!(text.contains("That code is not right."), "{text}");
    assert!(!text.to_lowercase().contains("locked"));

    // The lock ends; a fresh step's code works then.
    app.clock.shift(Duration::minutes(16));
    let browser = password_step(&app).await;
    let response = code_step(&app, &browser, &enrolled.code(&app, 0)).await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn recovery_codes_work_once_and_a_new_set_replaces_the_old() {
    let (app, sink) = app_with_sink().await;
    let (account, enrolled) = user_with_an_app(&app).await;
    let code = &enrolled.recovery_codes[0];

    let browser = password_step(&app).await;
    let html = page(
        &browser,
        &app.url(&format!("{SECOND_STEP}?method=recovery")),
    )
    .await;
    assert!(html.contains("Recovery code"));
    let typed = code.to_uppercase().replace('-', " ");
    assert_eq!(code_step(&app, &browser, &typed).await.status(), 303);
    let subject = "A recovery code was used to sign in to your account";
    assert_eq!(subjects(&sink, subject, 1).await, 1);
    let again = password_step(&app).await;
    assert_eq!(code_step(&app, &again, code).await.status(), 422, "used");

    let html = page(&account, &app.url("/account/two-step")).await;
    assert!(html.contains("9 of 10 left"));
    let response = post_form(
        &account,
        &app.url("/account/two-step/recovery-codes"),
        &[
            ("csrf_token", &csrf_token(&html)),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let fresh = codes_on(&response.text().await.unwrap());
    assert_eq!(fresh.len(), 10);
    let old = password_step(&app).await;
    let old_code = &enrolled.recovery_codes[1];
    assert_eq!(code_step(&app, &old, old_code).await.status(), 422);
    assert_eq!(code_step(&app, &old, &fresh[0]).await.status(), 303);
    let subject = "New recovery codes were made for your account";
    assert_eq!(subjects(&sink, subject, 1).await, 1);
}

#[tokio::test]
async fn removing_the_last_app_turns_two_step_sign_in_off() {
    let (app, sink) = app_with_sink().await;
    let (browser, enrolled) = user_with_an_app(&app).await;
    let html = page(&browser, &app.url("/account/two-step")).await;
    let id = between(&html, r#"type="radio" value=""#, "\"").to_owned();
    let remove = |password: &'static str| {
        let (browser, app, html, id) = (&browser, &app, &html, &id);
        async move {
            post_form(
                browser,
                &app.url("/account/two-step/remove"),
                &[
                    ("csrf_token", &csrf_token(html)),
                    ("id", id),
                    ("current_password", password),
                ],
            )
            .await
        }
    };
    assert_eq!(remove("not my password").await.status(), 422);
    assert_eq!(remove(PASSWORD).await.status(), 303);
    let html = page(&browser, &app.url("/account/two-step")).await;
    assert!(html.contains("Off. Your password alone signs you in."));
    let subject = "An authenticator app was removed from your account";
    assert_eq!(subjects(&sink, subject, 1).await, 1);

    // The password alone signs in again; the recovery codes are gone.
    let fresh = crate::browser_helpers::browser();
    sign_in(&app, &fresh, EMAIL).await;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM recovery_codes")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    assert!(!enrolled.recovery_codes.is_empty());
}

/// The access token of a JSON API login (`200`), decoded.
async fn access_claims(response: Response) -> Value {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    decode_jwt(body["access_token"].as_str().unwrap()).1
}

#[tokio::test]
async fn the_json_api_answers_mfa_required_and_a_single_use_challenge_completes_it() {
    let app = crate::helpers::spawn_app().await;
    let (_, enrolled) = user_with_an_app(&app).await;

    let response = app.post_login(EMAIL, PASSWORD).await;
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "mfa_required");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    let challenge = body["mfa_token"].as_str().unwrap().to_owned();
    let second = |token: &str, code: &str| {
        let body = json!({ "mfa_token": token, "code": code });
        let app = &app;
        async move { app.post_json("/auth/login/mfa", &body).await }
    };

    let right = enrolled.code(&app, 0);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let response = second(&challenge, wrong).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "invalid_code");
    let response = second(&challenge, &right).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    let claims = decode_jwt(access).1;
    assert_eq!(claims["acr"], "urn:idp:acr:mfa");
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert!(claims["auth_time"].is_i64());
    let activity: Value = app
        .client
        .get(app.url("/auth/activity"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let steps: Vec<(&str, &str)> = activity["sign_ins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["step"].as_str().unwrap(), a["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps[..3],
        [
            ("second_factor", "success"),
            ("second_factor", "failure"),
            ("password", "success")
        ]
    );

    // Single use, and nothing but a live challenge works.
    app.clock.shift(Duration::seconds(30));
    let response = second(&challenge, &enrolled.code(&app, 0)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_mfa_token");
    let response = second("made-up", &enrolled.code(&app, 0)).await;
    assert_eq!(error_code(response).await, "invalid_mfa_token");

    // A recovery code works as the second step too; a stale challenge does not.
    let response = app.post_login(EMAIL, PASSWORD).await;
    let body: Value = response.json().await.unwrap();
    let fresh = body["mfa_token"].as_str().unwrap();
    app.clock.shift(Duration::minutes(6));
    let response = second(fresh, &enrolled.recovery_codes[0]).await;
    assert_eq!(error_code(response).await, "invalid_mfa_token", "expired");
    let response = app.post_login(EMAIL, PASSWORD).await;
    let body: Value = response.json().await.unwrap();
    let fresh = body["mfa_token"].as_str().unwrap();
    let claims = access_claims(second(fresh, &enrolled.recovery_codes[0]).await).await;
    assert_eq!(claims["acr"], "urn:idp:acr:mfa");
}

#[tokio::test]
async fn tokens_say_how_the_user_signed_in() {
    let app = crate::helpers::spawn_app().await;
    app.register("grace@example.com").await;
    let claims = access_claims(app.post_login("grace@example.com", PASSWORD).await).await;
    assert_eq!(claims["acr"], "urn:idp:acr:pwd");
    assert_eq!(claims["amr"], json!(["pwd"]));

    // Through the pages and the authorization code flow: the ID token, the access
    // token, and both again after a refresh.
    let (_, enrolled) = user_with_an_app(&app).await;
    let (client, request) = client_and_request(&app).await;
    let browser = crate::browser_helpers::browser();
    let login = location(&app, &authorize(&app, &browser, &request).await);
    let response = submit_login(&app, &browser, &login, EMAIL).await;
    assert_eq!(location(&app, &response), app.url(SECOND_STEP));
    let response = code_step(&app, &browser, &enrolled.code(&app, 0)).await;
    let code = finish_authorization(&app, &browser, &response).await;
    let tokens = token_body(redeem(&app, &client, &code).await).await;
    let (_, id) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "urn:idp:acr:mfa");
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
    let (_, access) = decode_jwt(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["acr"], "urn:idp:acr:mfa");
    assert_eq!(access["auth_time"], id["auth_time"]);

    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let refreshed = crate::oauth_helpers::refresh(&app, &client, refresh_token, &[]).await;
    let refreshed = token_body(refreshed).await;
    let (_, id) = decode_jwt(refreshed["id_token"].as_str().unwrap());
    assert_eq!(
        id["amr"],
        json!(["pwd", "otp", "mfa"]),
        "the grant keeps it"
    );
}

/// A confidential client, and an authorization request of it (`openid email`, PKCE).
async fn client_and_request(app: &TestApp) -> (crate::oauth_helpers::TestClient, AuthRequest) {
    let client = crate::oauth_helpers::confidential_client(app).await;
    let browser_client = crate::browser_helpers::TestClient {
        id: client.id.clone(),
        name: String::new(),
    };
    let request =
        AuthRequest::new(&browser_client).set("redirect_uri", crate::oauth_helpers::REDIRECT_URI);
    (client, request)
}

/// From a redirect to `/authorize/continue`, through consent, to the code.
async fn finish_authorization(app: &TestApp, browser: &Client, response: &Response) -> String {
    let next = location(app, response);
    assert!(next.starts_with(&app.url("/authorize/continue")), "{next}");
    let mut next = location(app, &get(browser, &next).await);
    if next.starts_with(&app.url("/consent")) {
        next = location(app, &submit_consent(app, browser, &next, "allow").await);
    }
    crate::browser_helpers::param(&next, "code").expect("a code")
}

#[tokio::test]
async fn acr_values_steps_a_password_sign_in_up_and_prompt_none_cannot() {
    let app = crate::helpers::spawn_app().await;
    // Signed in with the password, then an app added: the session is password-only.
    let (browser, enrolled) = user_with_an_app(&app).await;
    let (client, request) = client_and_request(&app).await;
    let asking = request.clone().set("acr_values", "urn:idp:acr:mfa");

    let silent = asking.clone().set("prompt", "none");
    let back = location(&app, &authorize(&app, &browser, &silent).await);
    assert_eq!(
        crate::browser_helpers::param(&back, "error").as_deref(),
        Some("interaction_required")
    );

    let response = authorize(&app, &browser, &asking).await;
    assert_eq!(location(&app, &response), app.url(SECOND_STEP));
    let response = code_step(&app, &browser, &enrolled.code(&app, 0)).await;
    let code = finish_authorization(&app, &browser, &response).await;
    let tokens = token_body(redeem(&app, &client, &code).await).await;
    let (_, id) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "urn:idp:acr:mfa");

    // Stepped up, the same session satisfies the next such request silently.
    let back = location(&app, &authorize(&app, &browser, &silent).await);
    assert!(
        crate::browser_helpers::param(&back, "code").is_some(),
        "{back}"
    );

    // Someone without a second factor is not asked: the acr claim tells the client.
    app.register("grace@example.com").await;
    let other = crate::browser_helpers::browser();
    sign_in(&app, &other, "grace@example.com").await;
    let back = location(&app, &authorize(&app, &other, &asking).await);
    let next = if back.starts_with(&app.url("/consent")) {
        location(&app, &submit_consent(&app, &other, &back, "allow").await)
    } else {
        back
    };
    let code = crate::browser_helpers::param(&next, "code").expect("a code");
    let tokens = token_body(redeem(&app, &client, &code).await).await;
    let (_, id) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "urn:idp:acr:pwd");
}

/// The `error` an authorization request ended with at the client, if any.
async fn authorization_error(
    app: &TestApp,
    browser: &Client,
    request: &AuthRequest,
) -> Option<String> {
    let back = location(app, &authorize(app, browser, request).await);
    crate::browser_helpers::param(&back, "error")
}

#[tokio::test]
async fn a_client_registered_to_require_it_gets_codes_only_after_a_second_factor() {
    let app = crate::helpers::spawn_app().await;
    let client = crate::browser_helpers::register_client(&app, |c| c.require_mfa = true).await;
    let request = AuthRequest::new(&client);

    // Someone without a second factor is offered to add one on the way (with
    // prompt=none the client hears it cannot be met).
    app.register("grace@example.com").await;
    let grace = crate::browser_helpers::browser();
    sign_in(&app, &grace, "grace@example.com").await;
    let silent = request.clone().set("prompt", "none");
    assert_eq!(
        authorization_error(&app, &grace, &silent).await.as_deref(),
        Some("unmet_authentication_requirements")
    );
    let offer = location(&app, &authorize(&app, &grace, &request).await);
    assert!(
        offer.starts_with(&app.url("/account/two-step/totp?request=")),
        "{offer}"
    );
    let html = page(&grace, &offer).await;
    assert!(html.contains("requires two-step sign-in"), "{html}");
    let added = Enrolled {
        secret: secret_on(&html),
        recovery_codes: Vec::new(),
    };
    let response = post_form(
        &grace,
        &app.url("/account/two-step/totp"),
        &[
            ("csrf_token", &csrf_token(&html)),
            ("id", &hidden(&html, "id").unwrap()),
            ("request", &hidden(&html, "request").unwrap()),
            ("name", "Phone"),
            ("code", &added.code(&app, 0)),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), 200, "the recovery codes, shown once");
    let html = response.text().await.unwrap();
    assert_eq!(codes_on(&html).len(), 10);
    let next = between(&html, r#"<a class="button primary" href=""#, "\"");
    let next = crate::browser_helpers::unescape(next);
    assert!(next.starts_with("/authorize/continue?request="), "{next}");
    let back = location(&app, &get(&grace, &app.url(&next)).await);
    let back = if back.starts_with(&app.url("/consent")) {
        location(&app, &submit_consent(&app, &grace, &back, "allow").await)
    } else {
        back
    };
    assert!(
        crate::browser_helpers::param(&back, "code").is_some(),
        "{back}"
    );

    // Someone with one is asked for it, without acr_values.
    let (browser, enrolled) = user_with_an_app(&app).await;
    let response = authorize(&app, &browser, &request).await;
    assert_eq!(location(&app, &response), app.url(SECOND_STEP));
    let response = code_step(&app, &browser, &enrolled.code(&app, 0)).await;
    finish_authorization(&app, &browser, &response).await;
}

#[tokio::test]
async fn idp_require_mfa_holds_every_client_to_it() {
    let app =
        crate::helpers::spawn_app_with(service_kit::testing::fresh_database("idp").await, |s| {
            s.require_mfa = true
        })
        .await;
    let client = crate::browser_helpers::register_client(&app, |_| {}).await;
    app.register("grace@example.com").await;
    let grace = crate::browser_helpers::browser();
    // The idp's own pages still sign in with the password, so an app can be added.
    sign_in(&app, &grace, "grace@example.com").await;
    let offer = location(
        &app,
        &authorize(&app, &grace, &AuthRequest::new(&client)).await,
    );
    assert!(
        offer.starts_with(&app.url("/account/two-step/totp?request=")),
        "{offer}"
    );
    enrol(&app, &grace, "Phone").await;
    let response = authorize(&app, &grace, &AuthRequest::new(&client)).await;
    assert_eq!(location(&app, &response), app.url(SECOND_STEP));
}

#[tokio::test]
async fn every_change_and_second_step_is_audited_without_secrets_and_shown_to_the_owner() {
    let app = crate::helpers::spawn_app().await;
    let (browser, enrolled) = user_with_an_app(&app).await;
    let wrong = if enrolled.code(&app, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let second = password_step(&app).await;
    assert_eq!(code_step(&app, &second, wrong).await.status(), 422);
    assert_eq!(
        code_step(&app, &second, &enrolled.recovery_codes[0])
            .await
            .status(),
        303
    );
    let html = page(&browser, &app.url("/account/two-step")).await;
    let response = post_form(
        &browser,
        &app.url("/account/two-step/recovery-codes"),
        &[
            ("csrf_token", &csrf_token(&html)),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);

    let rows = idp::guards::audit::store::latest(&app.db.pool, 100)
        .await
        .unwrap();
    let outcomes = |event: &str| -> Vec<(String, Option<String>)> {
        rows.iter()
            .filter(|r| r.event == event)
            .map(|r| (r.outcome.clone(), r.detail.clone()))
            .collect()
    };
    assert_eq!(
        outcomes("second_factor_added"),
        [("success".to_owned(), Some("totp".to_owned()))]
    );
    let mut steps = outcomes("sign_in_second_factor");
    steps.sort();
    assert_eq!(
        steps,
        [
            ("failure".to_owned(), None),
            ("success".to_owned(), Some("recovery_code".to_owned()))
        ]
    );
    assert_eq!(outcomes("recovery_codes_regenerated").len(), 1);
    // The owner sees the wrong code after a right password: someone has the password.
    let account = page(&browser, &app.url("/account")).await;
    assert!(
        account.contains("Wrong code at the second step"),
        "{account}"
    );
    assert!(account.contains("Right password") && account.contains("Second step passed"));

    let text = format!("{rows:?}");
    let secret = Secret::from(enrolled.secret.clone()).to_base32();
    for leaked in [
        secret.as_str(),
        enrolled.recovery_codes[0].as_str(),
        PASSWORD,
    ] {
        assert!(!text.contains(leaked), "{leaked} in the audit trail");
    }
}
