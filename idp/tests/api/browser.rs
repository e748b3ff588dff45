//! The idp's pages in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromedriver`). A person signs in through the login and
//! consent pages and lands on the client's redirect URI with a code, the state and the
//! issuer; signed in on two browsers, they end one session from the other's account
//! page; having forgotten their password, they reset it with the link from the mail;
//! they confirm their address and move to a new one with the links mailed to them;
//! they add an authenticator app and sign in with its code; they add a passkey (with
//! WebDriver's virtual authenticator) and sign in with it, with and without a password.
//! Every page renders without a console error (a CSP violation is one).
//!
//! Without Chromium the tests print why and pass, unless `REQUIRE_BROWSER=1` (CI), where
//! a missing or broken browser fails them. `CHROMIUM` and `CHROMEDRIVER` override the
//! binaries' paths.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, CsrfToken, LogoutRequest, Nonce, PkceCodeChallenge, PostLogoutRedirectUrl,
    Scope, TokenResponse,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use url::Url;

use crate::helpers::{PASSWORD, spawn_app};
use crate::oidc_helpers::{ClientKind, back_channel, discover, register_client, rp_client};

/// The whole browser part of a test, start-up and shutdown included.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);
/// One page load or one wait for an element.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_home_page_renders_in_chromium_without_console_errors() {
    let app = spawn_app().await;
    with_chromium(async |browser| {
        browser.goto(&app.url("/")).await.unwrap();
        let heading = browser.find(Locator::Css("h1")).await.unwrap();
        assert_eq!(heading.text().await.unwrap(), "Sign-in service");
        assert_no_console_errors(&browser, "the home page").await;
    })
    .await;
}

#[tokio::test]
async fn a_person_signs_in_through_the_pages_in_chromium_and_the_client_gets_a_code() {
    let app = spawn_app().await;
    let email = "ada@example.com";
    app.register(email).await;
    let site = ClientSite::start().await;
    let registered =
        register_client(&app, ClientKind::Confidential, &site.url("/callback"), &[]).await;
    let client = rp_client(&discover(&app).await, &registered);
    let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state, _nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .set_pkce_challenge(challenge)
        .url();

    with_chromium(async |browser| {
        browser.goto(authorize_url.as_str()).await.unwrap();

        // The login page.
        let password = wait_for(&browser, "input[name=password]").await;
        assert_no_console_errors(&browser, "the login page").await;
        let form = browser
            .form(Locator::XPath("//form[.//input[@name='password']]"))
            .await
            .unwrap();
        fill(&browser, "email", email).await;
        password.send_keys(PASSWORD).await.unwrap();
        form.submit().await.unwrap();

        // The consent page: allow.
        let allow = wait_for_xpath(&browser, ALLOW_BUTTON).await;
        assert_no_console_errors(&browser, "the consent page").await;
        let page = browser.source().await.unwrap();
        assert!(page.contains("Test RP"), "consent names the client");
        allow.click().await.unwrap();

        // Back at the client.
        let landed = wait_for_url(&browser, &site.url("/callback?")).await;
        assert_no_console_errors(&browser, "the pages around the redirect").await;
        assert!(
            param(&landed, "code").is_some_and(|c| !c.is_empty()),
            "{landed}"
        );
        assert_eq!(param(&landed, "state"), Some(state.secret().clone()));
        assert_eq!(param(&landed, "iss").as_deref(), Some(app.issuer.as_str()));
        assert_eq!(
            site.requests(),
            vec![format!("/callback?{}", landed.query().unwrap_or_default())],
            "the client's server saw exactly this response"
        );
    })
    .await;
}

#[tokio::test]
async fn a_new_person_registers_in_chromium_and_later_signs_out_through_the_client() {
    let app = spawn_app().await;
    let site = ClientSite::start().await;
    let registered = register_client(
        &app,
        ClientKind::Public,
        &site.url("/callback"),
        &[&site.url("/signed-out")],
    )
    .await;
    let metadata = discover(&app).await;
    let client = rp_client(&metadata, &registered);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".to_owned()))
        .set_pkce_challenge(challenge)
        .url();

    with_chromium(async move |browser| {
        browser.goto(authorize_url.as_str()).await.unwrap();

        // From the login page to the registration page, and an account.
        wait_for(&browser, "input[name=password]").await;
        assert_no_console_errors(&browser, "the login page").await;
        browser
            .find(Locator::LinkText("Create an account"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(&browser, "input[name=password_confirmation]").await;
        assert_no_console_errors(&browser, "the registration page").await;
        fill(&browser, "email", "lin@example.com").await;
        fill(&browser, "name", "Lin").await;
        fill(&browser, "password", PASSWORD).await;
        fill(&browser, "password_confirmation", PASSWORD).await;
        browser
            .form(Locator::XPath(
                "//form[.//input[@name='password_confirmation']]",
            ))
            .await
            .unwrap()
            .submit()
            .await
            .unwrap();

        // Consent, and back at the client with a code.
        let allow = wait_for_xpath(&browser, ALLOW_BUTTON).await;
        assert_no_console_errors(&browser, "the consent page after registration").await;
        allow.click().await.unwrap();
        let landed = wait_for_url(&browser, &site.url("/callback?")).await;
        assert_eq!(param(&landed, "state"), Some(state.secret().clone()));
        assert_eq!(param(&landed, "iss").as_deref(), Some(app.issuer.as_str()));
        let code = param(&landed, "code").expect("a code");

        // The client redeems it for an ID token ...
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&back_channel())
            .await
            .unwrap();
        let id_token = tokens.id_token().expect("an ID token");
        let claims = id_token
            .claims(&client.id_token_verifier(), &nonce)
            .unwrap();
        assert_eq!(
            claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
            Some("Lin"),
            "the name given at registration"
        );

        // ... and later signs the person out (RP-initiated logout), who confirms.
        let logout_state = CsrfToken::new_random();
        let logout_url =
            LogoutRequest::from(metadata.additional_metadata().end_session_endpoint.clone())
                .set_id_token_hint(id_token)
                .set_post_logout_redirect_uri(
                    PostLogoutRedirectUrl::new(site.url("/signed-out")).unwrap(),
                )
                .set_state(logout_state.clone())
                .http_get_url();
        browser.goto(logout_url.as_str()).await.unwrap();
        let sign_out = wait_for_xpath(&browser, "//form//button[contains(., 'Sign out')]").await;
        assert_no_console_errors(&browser, "the logout page").await;
        sign_out.click().await.unwrap();
        let back = wait_for_url(&browser, &site.url("/signed-out?")).await;
        assert_eq!(param(&back, "state"), Some(logout_state.secret().clone()));
        assert_no_console_errors(&browser, "the way back after logout").await;

        // The idp session is gone: the same request asks for a password again.
        browser.goto(authorize_url.as_str()).await.unwrap();
        wait_for(&browser, "input[name=password]").await;
        assert_no_console_errors(&browser, "the login page after logout").await;
    })
    .await;
}

#[tokio::test]
async fn a_person_signed_in_on_two_browsers_ends_the_other_session_from_the_account_page() {
    let app = spawn_app().await;
    let email = "ada@example.com";
    app.register(email).await;

    with_two_chromiums(async |first, second| {
        // The first browser signs in at the sign-in page and goes to the account page
        // from home.
        first.goto(&app.url("/login")).await.unwrap();
        sign_in_on_the_page(&first, email).await;
        wait_for_url(&first, &app.url("/")).await;
        first
            .find(Locator::LinkText("Your account"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_xpath(&first, "//h1[. = 'Your account']").await;
        assert_eq!(session_items(&first).await, 1);
        assert_no_console_errors(&first, "the account page").await;

        // The second one asks for the account page, signs in, and comes back to it.
        second.goto(&app.url("/account")).await.unwrap();
        wait_for(&second, "input[name=password]").await;
        assert_no_console_errors(&second, "the login page on the way to the account").await;
        sign_in_on_the_page(&second, email).await;
        wait_for_url(&second, &app.url("/account")).await;
        wait_for_xpath(&second, "//h1[. = 'Your account']").await;
        assert_eq!(session_items(&second).await, 2);
        assert_no_console_errors(&second, "the account page after signing in").await;

        // The first one sees both sessions, its own marked, and ends the other one.
        first.refresh().await.unwrap();
        wait_for_xpath(&first, "//h1[. = 'Your account']").await;
        assert_eq!(session_items(&first).await, 2);
        let current = first
            .find(Locator::Css("li.session.current"))
            .await
            .unwrap();
        assert!(current.text().await.unwrap().contains("This device"));
        first
            .find(Locator::XPath(OTHER_SESSIONS_END_BUTTON))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let notice = wait_for(&first, "div.notice").await;
        assert_eq!(
            notice.text().await.unwrap(),
            "Session ended. That device is signed out."
        );
        assert_eq!(session_items(&first).await, 1, "the other session is gone");
        assert!(
            first
                .find(Locator::XPath(OTHER_SESSIONS_END_BUTTON))
                .await
                .is_err()
        );
        assert_eq!(
            first.current_url().await.unwrap().as_str(),
            app.url("/account")
        );
        assert_no_console_errors(&first, "the account page after ending a session").await;

        // The second one is signed out: reloading shows the sign-in page.
        second.refresh().await.unwrap();
        wait_for(&second, "input[name=password]").await;
        let url = second.current_url().await.unwrap();
        assert!(url.as_str().starts_with(&app.url("/login?")), "{url}");
        assert_no_console_errors(&second, "the sign-in page after the session ended").await;
    })
    .await;
}

/// "Forgot your password?" from the sign-in page, the link read from the mail the SMTP
/// sink received, a new password on the page the link opens, and a sign-in with it.
#[tokio::test]
async fn a_person_who_forgot_their_password_resets_it_by_mail_in_chromium() {
    let (app, sink) = crate::recovery::app_with_sink().await;
    let email = "ada@example.com";
    let new_password = "an entirely new passphrase";
    app.register(email).await;

    with_chromium(async |browser| {
        browser.goto(&app.url("/login")).await.unwrap();
        wait_for(&browser, "input[name=password]").await;
        browser
            .find(Locator::LinkText("Forgot your password?"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_xpath(&browser, "//h1[. = 'Reset your password']").await;
        assert_no_console_errors(&browser, "the forgot-password page").await;
        fill(&browser, "email", email).await;
        submit_form_with(&browser, "email").await;
        wait_for_xpath(&browser, "//p[contains(., 'If an account uses')]").await;
        assert_no_console_errors(&browser, "the link-sent page").await;

        let link = crate::recovery::reset_link(&app, &sink, 0).await;
        browser.goto(&link).await.unwrap();
        wait_for_xpath(&browser, "//h1[. = 'Choose a new password']").await;
        assert_no_console_errors(&browser, "the new-password page").await;
        fill(&browser, "password", new_password).await;
        fill(&browser, "password_confirmation", new_password).await;
        submit_form_with(&browser, "token").await;
        let notice = wait_for(&browser, "div.notice").await;
        assert_eq!(
            notice.text().await.unwrap(),
            "Your password was changed. Sign in with the new one."
        );
        wait_for_url(&browser, &app.url("/login")).await;

        fill(&browser, "email", email).await;
        fill(&browser, "password", new_password).await;
        submit_form_with(&browser, "password").await;
        wait_for_url(&browser, &app.url("/")).await;
        wait_for(&browser, "a[href='/account']").await;
        assert_no_console_errors(&browser, "home after signing in anew").await;
    })
    .await;
}

/// Signed in, a person confirms their address with the link from the registration mail,
/// then moves the account to a new address with the link mailed there, and signs in
/// with it: the pages of both flows, in Chromium, over real SMTP.
#[tokio::test]
async fn a_person_confirms_their_address_then_moves_to_a_new_one_by_mail_in_chromium() {
    let (app, sink) = crate::recovery::app_with_sink().await;
    let (old, new) = ("ada@example.com", "ada.king@example.org");
    app.register(old).await;

    with_chromium(async |browser| {
        browser.goto(&app.url("/login")).await.unwrap();
        sign_in_on_the_page(&browser, old).await;
        wait_for_url(&browser, &app.url("/")).await;
        browser.goto(&app.url("/account")).await.unwrap();
        wait_for(&browser, "#verify-heading").await;
        assert_no_console_errors(&browser, "the account page, unverified").await;

        let mail = sink
            .wait_for_subject("Confirm your email address", 1)
            .await
            .remove(0);
        let verify = crate::smtp_sink::link(&mail.data, &app.url("/email/verify?token="));
        browser.goto(&verify).await.unwrap();
        wait_for_xpath(&browser, "//h1[. = 'Email address confirmed']").await;
        assert_no_console_errors(&browser, "the address-confirmed page").await;
        browser
            .find(Locator::LinkText("Go to your account"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(&browser, "#email-heading").await;
        assert!(
            browser.find(Locator::Css("#verify-heading")).await.is_err(),
            "no longer asked to confirm"
        );

        fill(&browser, "new_email", new).await;
        browser
            .find(Locator::Css("#email_current_password"))
            .await
            .unwrap()
            .send_keys(PASSWORD)
            .await
            .unwrap();
        submit_form_with(&browser, "new_email").await;
        let notice = wait_for(&browser, "div.notice").await;
        assert_eq!(
            notice.text().await.unwrap(),
            format!("We sent a link to {new}. Your address changes when you open it.")
        );
        assert_no_console_errors(&browser, "the account page, change asked").await;

        let mail = sink
            .wait_for_subject("Confirm your new email address", 1)
            .await
            .remove(0);
        assert_eq!(mail.to, [new]);
        let change = crate::smtp_sink::link(&mail.data, &app.url("/email/change?token="));
        browser.goto(&change).await.unwrap();
        wait_for_xpath(&browser, "//h1[. = 'Email address changed']").await;
        assert_no_console_errors(&browser, "the address-changed page").await;
        browser.goto(&app.url("/account")).await.unwrap();
        let identity = wait_for(&browser, "strong.identity").await;
        assert_eq!(identity.text().await.unwrap(), new);
        assert!(browser.find(Locator::Css("#verify-heading")).await.is_err());
    })
    .await;
    assert_eq!(app.post_login(old, PASSWORD).await.status(), 401);
    app.login(new).await;
}

/// Two-step sign-in in Chromium: the person adds an authenticator app (the test reads
/// the key the page shows and computes the codes, as the app would) and sees the
/// recovery codes; an `openidconnect` client asking for `acr_values=urn:idp:acr:mfa`
/// steps the password-only session up and reads `acr`/`amr`; signed out, the person
/// signs in again with the password and then a code. The inline QR code passes the CSP
/// (no console error).
#[tokio::test]
async fn a_person_adds_an_authenticator_app_and_signs_in_with_a_code_in_chromium() {
    let app = spawn_app().await;
    let email = "ada@example.com";
    app.register(email).await;
    let site = ClientSite::start().await;
    let registered =
        register_client(&app, ClientKind::Confidential, &site.url("/callback"), &[]).await;
    let client = rp_client(&discover(&app).await, &registered);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, _state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_extra_param("acr_values", "urn:idp:acr:mfa")
        .set_pkce_challenge(challenge)
        .url();
    let code = |secret: &str, steps: i64| {
        let at = app.clock.now().timestamp() + steps * 30;
        totp_rs::Builder::new()
            .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
            .build()
            .unwrap()
            .generate(u64::try_from(at).unwrap())
            .to_string()
    };

    with_chromium(async |browser| {
        browser.goto(&app.url("/login")).await.unwrap();
        sign_in_on_the_page(&browser, email).await;
        wait_for_url(&browser, &app.url("/")).await;
        browser.goto(&app.url("/account")).await.unwrap();
        browser
            .find(Locator::LinkText("Manage two-step sign-in"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        browser
            .find(Locator::LinkText("Add an authenticator app"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(&browser, "figure.qr svg").await;
        assert_no_console_errors(&browser, "the page with the QR code").await;
        let secret = wait_for(&browser, "#totp-secret")
            .await
            .text()
            .await
            .unwrap();
        fill(&browser, "name", "Phone").await;
        fill(&browser, "code", &code(&secret, 0)).await;
        fill(&browser, "current_password", PASSWORD).await;
        submit_form_with(&browser, "code").await;
        wait_for_xpath(&browser, "//h1[. = 'Your recovery codes']").await;
        let codes = browser
            .find_all(Locator::Css("ul.codes code"))
            .await
            .unwrap();
        assert_eq!(codes.len(), 10);
        assert_no_console_errors(&browser, "the recovery codes page").await;

        // This session signed in with the password alone: a client asking for the
        // multi-factor level steps it up, and its ID token says so.
        app.clock.shift(chrono::Duration::seconds(30));
        browser.goto(authorize_url.as_str()).await.unwrap();
        wait_for_url(&browser, &app.url("/login/second-factor")).await;
        fill(&browser, "code", &code(&secret, 0)).await;
        submit_form_with(&browser, "code").await;
        wait_for_xpath(&browser, ALLOW_BUTTON)
            .await
            .click()
            .await
            .unwrap();
        let landed = wait_for_url(&browser, &site.url("/callback?")).await;
        let tokens = client
            .exchange_code(AuthorizationCode::new(param(&landed, "code").unwrap()))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&back_channel())
            .await
            .unwrap();
        let claims = tokens
            .id_token()
            .unwrap()
            .claims(&client.id_token_verifier(), &nonce)
            .unwrap();
        assert_eq!(
            claims.auth_context_ref().map(|acr| acr.as_str()),
            Some("urn:idp:acr:mfa")
        );
        let amr: Vec<&str> = claims
            .auth_method_refs()
            .unwrap()
            .iter()
            .map(|m| m.as_str())
            .collect();
        assert_eq!(amr, ["pwd", "otp", "mfa"]);

        // Signed out, the password alone no longer signs in.
        browser.delete_all_cookies().await.unwrap();
        app.clock.shift(chrono::Duration::seconds(30));
        browser.goto(&app.url("/login")).await.unwrap();
        sign_in_on_the_page(&browser, email).await;
        wait_for_url(&browser, &app.url("/login/second-factor")).await;
        assert_no_console_errors(&browser, "the second step").await;
        fill(&browser, "code", &code(&secret, 0)).await;
        submit_form_with(&browser, "code").await;
        wait_for_url(&browser, &app.url("/")).await;
        wait_for(&browser, "a[href='/account']").await;
        assert_no_console_errors(&browser, "home after the second step").await;
    })
    .await;
}

/// Passkeys in Chromium, with WebDriver's virtual authenticator (CTAP2, internal,
/// resident keys, user verification): the person adds a passkey on the two-step page
/// (the first second factor, so the recovery codes follow), signs out, signs in with
/// the passkey alone, and later uses it as the second step after the password.
#[tokio::test]
async fn a_person_adds_a_passkey_and_signs_in_with_it_in_chromium() {
    // WebAuthn needs a domain for its relying party id: localhost, not 127.0.0.1.
    let app =
        crate::helpers::spawn_app_with(service_kit::testing::fresh_database("idp").await, |s| {
            s.issuer = s.issuer.replace("127.0.0.1", "localhost")
        })
        .await;
    let url = |path: &str| app.url(path).replace("127.0.0.1", "localhost");
    let email = "ada@example.com";
    app.register(email).await;

    with_chromium(async |browser| {
        browser.issue_cmd(VirtualAuthenticator).await.unwrap();
        browser.goto(&url("/login")).await.unwrap();
        sign_in_on_the_page(&browser, email).await;
        wait_for_url(&browser, &url("/")).await;
        browser.goto(&url("/account/two-step")).await.unwrap();
        let add = wait_for(&browser, "button[data-passkey='create']:not([hidden])").await;
        assert_no_console_errors(&browser, "the two-step page with its script").await;
        browser
            .find(Locator::Css("#passkey_name"))
            .await
            .unwrap()
            .send_keys("Laptop")
            .await
            .unwrap();
        browser
            .find(Locator::Css("#passkey_current_password"))
            .await
            .unwrap()
            .send_keys(PASSWORD)
            .await
            .unwrap();
        add.click().await.unwrap();
        wait_for_xpath(&browser, "//h1[. = 'Your recovery codes']").await;
        let codes = browser
            .find_all(Locator::Css("ul.codes code"))
            .await
            .unwrap();
        assert_eq!(codes.len(), 10);
        assert_no_console_errors(&browser, "the recovery codes after a passkey").await;

        // No password: the passkey signs in on its own.
        browser.delete_all_cookies().await.unwrap();
        browser.goto(&url("/login")).await.unwrap();
        wait_for(&browser, "button[data-passkey='get']:not([hidden])")
            .await
            .click()
            .await
            .unwrap();
        wait_for_url(&browser, &url("/")).await;
        wait_for(&browser, "a[href='/account']").await;
        assert_no_console_errors(&browser, "home after a passkey sign-in").await;

        // After the password, the passkey is the second step.
        browser.delete_all_cookies().await.unwrap();
        browser.goto(&url("/login")).await.unwrap();
        sign_in_on_the_page(&browser, email).await;
        wait_for_url(&browser, &url("/login/second-factor")).await;
        wait_for(&browser, "button[data-passkey='get']:not([hidden])")
            .await
            .click()
            .await
            .unwrap();
        wait_for_url(&browser, &url("/")).await;
        wait_for(&browser, "a[href='/account']").await;
        assert_no_console_errors(&browser, "home after a passkey second step").await;

        // Removed (with the password), it no longer stands between password and home.
        browser.goto(&url("/account/two-step")).await.unwrap();
        wait_for(&browser, "input[type=radio][checked]").await;
        browser
            .find(Locator::Css("#remove_current_password"))
            .await
            .unwrap()
            .send_keys(PASSWORD)
            .await
            .unwrap();
        browser
            .find(Locator::XPath("//button[. = 'Remove']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_xpath(&browser, "//p[starts-with(., 'Off.')]").await;
    })
    .await;
}

/// The End button of a session other than this browser's.
const OTHER_SESSIONS_END_BUTTON: &str = "//li[contains(@class, 'session') and \
     not(contains(@class, 'current'))]//button[contains(., 'End')]";

/// On a sign-in page: the email, [`PASSWORD`], submit.
async fn sign_in_on_the_page(browser: &Client, email: &str) {
    let password = wait_for(browser, "input[name=password]").await;
    fill(browser, "email", email).await;
    password.send_keys(PASSWORD).await.unwrap();
    submit_form_with(browser, "password").await;
}

/// Submits the form that has an input named `input`.
async fn submit_form_with(browser: &Client, input: &str) {
    let xpath = format!("//form[.//input[@name='{input}']]");
    browser
        .form(Locator::XPath(&xpath))
        .await
        .unwrap()
        .submit()
        .await
        .unwrap();
}

/// How many sessions the account page lists.
async fn session_items(browser: &Client) -> usize {
    browser
        .find_all(Locator::Css("ul.sessions > li.session"))
        .await
        .unwrap()
        .len()
}

const ALLOW_BUTTON: &str = "//button[contains(translate(normalize-space(.), 'ALOW', 'alow'), \
                            'allow') or @value='allow']";

async fn fill(browser: &Client, name: &str, value: &str) {
    browser
        .find(Locator::Css(&format!("input[name={name}]")))
        .await
        .unwrap()
        .send_keys(value)
        .await
        .unwrap();
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

// ---- waiting -------------------------------------------------------------------------

async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    wait_for_element(browser, Locator::Css(css)).await
}

async fn wait_for_xpath(browser: &Client, xpath: &str) -> fantoccini::elements::Element {
    wait_for_element(browser, Locator::XPath(xpath)).await
}

async fn wait_for_element(browser: &Client, locator: Locator<'_>) -> fantoccini::elements::Element {
    let found = browser
        .wait()
        .at_most(STEP_TIMEOUT)
        .for_element(locator)
        .await;
    match found {
        Ok(element) => element,
        Err(e) => {
            let url = browser.current_url().await.map(String::from);
            let page = browser.source().await.unwrap_or_default();
            panic!("no {locator:?} on {url:?}: {e}\npage:\n{page}");
        }
    }
}

/// Waits until the browser is on a URL starting with `prefix` and returns it.
async fn wait_for_url(browser: &Client, prefix: &str) -> Url {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        let url = browser.current_url().await.unwrap();
        if url.as_str().starts_with(prefix) {
            return url;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still on {url}, expected {prefix}...; page:\n{}",
            browser.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- console errors ------------------------------------------------------------------

/// WebDriver's WebAuthn extension: a virtual authenticator for this session, as a
/// platform authenticator that holds passkeys and verifies the user on its own.
#[derive(Debug)]
struct VirtualAuthenticator;

impl WebDriverCompatibleCommand for VirtualAuthenticator {
    fn endpoint(&self, base: &Url, session_id: Option<&str>) -> Result<Url, url::ParseError> {
        base.join(&format!(
            "session/{}/webauthn/authenticator",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &Url) -> (Method, Option<String>) {
        let authenticator = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        });
        (Method::POST, Some(authenticator.to_string()))
    }
}

/// chromedriver's log endpoint (`goog:loggingPrefs`); reading it empties the buffer.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &Url, session_id: Option<&str>) -> Result<Url, url::ParseError> {
        base.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &Url) -> (Method, Option<String>) {
        (Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

/// Fails on any SEVERE browser log entry since the last check: script errors, CSP
/// violations, failed loads of the page's resources (the favicon included).
async fn assert_no_console_errors(browser: &Client, what: &str) {
    let entries = browser.issue_cmd(BrowserLog).await.unwrap();
    let errors: Vec<&Value> = entries
        .as_array()
        .map(|a| a.iter().filter(|e| e["level"] == "SEVERE").collect())
        .unwrap_or_default();
    assert!(errors.is_empty(), "console errors on {what}: {errors:#?}");
}

// ---- the client's redirect URI ----------------------------------------------------------

/// A stand-in for the client's web server: records the path and query of every page
/// the browser asks for (`/callback?code=...`, `/signed-out?state=...`) and answers
/// with a plain page.
struct ClientSite {
    address: String,
    requests: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl ClientSite {
    async fn start() -> Self {
        use axum::extract::State;
        use axum::http::StatusCode;
        use axum::http::Uri;
        use axum::response::{Html, IntoResponse};

        let requests = Arc::new(Mutex::new(Vec::new()));
        let router = axum::Router::new()
            .fallback(
                async |State(seen): State<Arc<Mutex<Vec<String>>>>, uri: Uri| {
                    if uri.path() == "/favicon.ico" {
                        return StatusCode::NO_CONTENT.into_response();
                    }
                    seen.lock().unwrap().push(uri.to_string());
                    Html("<!doctype html><html lang=en><title>Client</title><p>Back at the client.")
                        .into_response()
                },
            )
            .with_state(requests.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            address,
            requests,
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `path?query` of each page asked for so far.
    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for ClientSite {
    fn drop(&mut self) {
        self.server.abort();
    }
}

// ---- Chromium ------------------------------------------------------------------------

/// Runs `test` against a fresh headless Chromium, which is always shut down afterwards
/// (also when the test panics or times out). Returns without running `test` when no
/// Chromium is installed and `REQUIRE_BROWSER` is not set.
async fn with_chromium(test: impl AsyncFnOnce(Client)) {
    let Some(chromium) = Chromium::start().await else {
        return;
    };
    let client = chromium.client();
    supervise(vec![chromium], test(client)).await;
}

/// Like [`with_chromium`], with two browsers that share nothing (each its own
/// chromedriver and profile, so their own cookies): two devices of one person.
async fn with_two_chromiums(test: impl AsyncFnOnce(Client, Client)) {
    let Some(first) = Chromium::start().await else {
        return;
    };
    let Some(second) = Chromium::start().await else {
        first.shutdown().await;
        return;
    };
    let (a, b) = (first.client(), second.client());
    supervise(vec![first, second], test(a, b)).await;
}

/// Runs `test` with a time limit, then shuts `browsers` down whatever happened, then
/// reports the test's panic or timeout.
async fn supervise(browsers: Vec<Chromium>, test: impl Future<Output = ()>) {
    let outcome = AssertUnwindSafe(tokio::time::timeout(TEST_TIMEOUT, test))
        .catch_unwind()
        .await;
    for browser in browsers {
        browser.shutdown().await;
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("the browser test took longer than {TEST_TIMEOUT:?}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

struct Chromium {
    /// The WebDriver session, once it exists.
    client: Option<Client>,
    /// chromedriver, leader of a process group of its own that Chromium joins.
    driver: Option<std::process::Child>,
    profile: tempfile::TempDir,
}

fn required() -> bool {
    std::env::var("REQUIRE_BROWSER").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn binary(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

impl Chromium {
    async fn start() -> Option<Self> {
        let chromium = binary("CHROMIUM", "/usr/bin/chromium");
        let chromedriver = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
        if !chromium.exists() || !chromedriver.exists() {
            let message = format!(
                "{} or {} is missing (apt-get install chromium chromium-driver)",
                chromium.display(),
                chromedriver.display()
            );
            assert!(!required(), "REQUIRE_BROWSER is set but {message}");
            // Straight to stderr: libtest does not capture this, so the skip is visible.
            let _ = writeln!(
                std::io::stderr(),
                "note: browser test skipped: {message}; set REQUIRE_BROWSER=1 to make this an error"
            );
            return None;
        }
        let profile = tempfile::tempdir().unwrap();
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let log = profile.path().join("chromedriver.log");
        let driver = std::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            // Chromium's scratch files go into the profile folder, removed with it.
            .env("TMPDIR", profile.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        // From here on, dropping `this` (a panic included) kills chromedriver and Chromium.
        let mut this = Self {
            client: None,
            driver: Some(driver),
            profile,
        };
        let webdriver = format!("http://127.0.0.1:{port}");
        wait_until_ready(&webdriver).await;

        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    // No internet here: without these Chromium floods refused connections.
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    format!("--user-data-dir={}", this.profile.path().join("profile").display()),
                ],
            }),
        );
        capabilities.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        capabilities.insert(
            "timeouts".into(),
            json!({"pageLoad": STEP_TIMEOUT.as_millis(), "script": 10_000, "implicit": 0}),
        );
        let connect = tokio::time::timeout(
            Duration::from_secs(30),
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&webdriver),
        )
        .await;
        match connect {
            Ok(Ok(client)) => this.client = Some(client),
            failed => {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: String = log
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                panic!("Chromium did not start: {failed:?}\nchromedriver log (tail):\n{tail}");
            }
        }
        Some(this)
    }

    fn client(&self) -> Client {
        self.client.clone().unwrap()
    }

    /// Ends the WebDriver session (Chromium quits), then kills whatever is left.
    async fn shutdown(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        }
        kill_group(&mut self.driver);
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// SIGKILL to chromedriver's process group (Chromium and its helpers are in it), then
/// reaps chromedriver. Until it is reaped, its pid cannot name anyone else's group.
fn kill_group(driver: &mut Option<std::process::Child>) {
    if let Some(mut driver) = driver.take() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = driver.kill();
        let _ = driver.wait();
    }
}

async fn wait_until_ready(webdriver: &str) {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = http
            .get(format!("{webdriver}/status"))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if let Ok(response) = ready
            && let Ok(body) = response.json::<Value>().await
            && body["value"]["ready"] == true
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not become ready at {webdriver}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
