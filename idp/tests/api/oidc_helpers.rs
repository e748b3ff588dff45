//! Helpers for the tests that act as a real relying party: registering clients, the
//! provider metadata as openidconnect sees it, a tiny HTML form reader, and a
//! cookie-keeping HTTP "browser" that signs in through the idp's pages.

use idp::oauth::Scope;
use idp::oauth::clients::{
    ClientType, Clients, ConsentPolicy, DEFAULT_SCOPE, GrantType, NewClient, PkcePolicy,
    RedirectUri,
};
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, ClientSecret, EndSessionUrl, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IntrospectionUrl, IssuerUrl, ProviderMetadata, RedirectUrl,
    RevocationUrl,
};
use serde::{Deserialize, Serialize};
use service_kit::clock::Clock;
use url::Url;

use crate::helpers::{PASSWORD, TestApp};

/// Discovery fields beyond OIDC Discovery's core set that the idp advertises.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ExtraMetadata {
    pub revocation_endpoint: RevocationUrl,
    pub introspection_endpoint: IntrospectionUrl,
    pub end_session_endpoint: EndSessionUrl,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

pub type IdpMetadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// An openidconnect client configured from discovery, with introspection set. (Not
/// revocation: oauth2 refuses it over plain http, RFC 7009 §2.)
pub type RpClient = CoreClient<
    EndpointSet,      // authorization
    EndpointNotSet,   // device authorization
    EndpointSet,      // introspection
    EndpointNotSet,   // revocation
    EndpointMaybeSet, // token
    EndpointMaybeSet, // userinfo
>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// A web app with a secret (`client_secret_basic`).
    Confidential,
    /// An SPA or native app: no secret (`none`), PKCE is its proof.
    Public,
}

pub struct RegisteredClient {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

/// Registers a client that asks for consent, needs PKCE and may use the code and
/// refresh grants with the default scopes.
pub async fn register_client(
    app: &TestApp,
    kind: ClientKind,
    redirect_uri: &str,
    post_logout_redirect_uris: &[&str],
) -> RegisteredClient {
    let uri = |u: &str| RedirectUri::parse(u).unwrap();
    let (client, secret) = Clients::new(app.db.pool.clone(), Clock::system())
        .create(NewClient {
            name: "Test RP".to_owned(),
            client_type: match kind {
                ClientKind::Confidential => ClientType::Confidential,
                ClientKind::Public => ClientType::Public,
            },
            auth_method: None,
            redirect_uris: vec![uri(redirect_uri)],
            post_logout_redirect_uris: post_logout_redirect_uris.iter().map(|u| uri(u)).collect(),
            allowed_scope: Scope::parse(DEFAULT_SCOPE).unwrap(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            consent: ConsentPolicy::Ask,
            pkce: PkcePolicy::Required,
            require_mfa: false,
            backchannel_logout: None,
        })
        .await
        .unwrap();
    RegisteredClient {
        id: client.id.as_ref().to_owned(),
        secret: secret.map(|s| s.expose().to_owned()),
        redirect_uri: redirect_uri.to_owned(),
    }
}

/// The HTTP client openidconnect uses for the back channel: never follows redirects.
pub fn back_channel() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A user agent over plain HTTP: keeps cookies, follows nothing by itself.
pub fn cookie_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

pub async fn discover(app: &TestApp) -> IdpMetadata {
    IdpMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &back_channel())
        .await
        .expect("openidconnect accepts the discovery document")
}

/// An openidconnect client for `registered`, from the discovery document.
pub fn rp_client(metadata: &IdpMetadata, registered: &RegisteredClient) -> RpClient {
    let extra = metadata.additional_metadata().clone();
    CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(registered.id.clone()),
        registered.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(registered.redirect_uri.clone()).unwrap())
    .set_introspection_url(extra.introspection_endpoint)
}

/// How a sign-in through the pages went: where the idp finally sent the browser
/// (the client's redirect URI with the response) and the paths of the pages shown.
pub struct SignIn {
    pub redirect: Url,
    pub pages: Vec<String>,
}

impl SignIn {
    pub fn param(&self, name: &str) -> Option<String> {
        self.redirect
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// Follows the idp from `start` (an authorization URL) like a person would: signs in
/// with `email` and [`PASSWORD`] on the login form and presses the consent page's
/// allow button, until the idp redirects to `redirect_uri`.
pub async fn sign_in_through_pages(
    browser: &reqwest::Client,
    start: &Url,
    email: &str,
    redirect_uri: &str,
) -> SignIn {
    let mut pages = Vec::new();
    let mut url = start.clone();
    let mut response = browser.get(url.clone()).send().await.unwrap();
    for _ in 0..12 {
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            url = url.join(&location).unwrap();
            if url.as_str().starts_with(redirect_uri) {
                return SignIn {
                    redirect: url,
                    pages,
                };
            }
            response = browser.get(url.clone()).send().await.unwrap();
            continue;
        }
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "GET/POST {url} answered {status}: {body}");
        pages.push(url.path().to_owned());
        let forms = forms(&body);
        let (form, submit) = if let Some(login) = forms.iter().find(|f| f.has_field("password")) {
            let mut fields = login.fields.clone();
            set_field(&mut fields, "email", email);
            set_field(&mut fields, "password", PASSWORD);
            (login, fields)
        } else if let Some((consent, allow)) = forms
            .iter()
            .find_map(|f| f.button_like("allow").map(|b| (f, b)))
        {
            let mut fields = consent.fields.clone();
            if let Some(name) = &allow.name {
                fields.push((name.clone(), allow.value.clone().unwrap_or_default()));
            }
            (consent, fields)
        } else {
            panic!("{url}: neither a login nor a consent form in:\n{body}");
        };
        let action = url.join(form.action.as_deref().unwrap_or("")).unwrap();
        assert!(
            form.method.eq_ignore_ascii_case("post"),
            "{url}: credential and consent forms must POST"
        );
        response = browser
            .post(action.clone())
            .form(&submit)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            303,
            "POST {action} must answer 303 See Other (SECURITY.md)"
        );
        url = action;
    }
    panic!("no redirect to {redirect_uri} after 12 steps; pages: {pages:?}");
}

fn set_field(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
    fields.retain(|(n, _)| n != name);
    fields.push((name.to_owned(), value.to_owned()));
}

// ---- a tiny reader for the idp's own HTML forms ---------------------------------------

#[derive(Clone, Debug, Default)]
pub struct Form {
    pub action: Option<String>,
    pub method: String,
    /// Every named `<input>` except submit buttons, with its value.
    pub fields: Vec<(String, String)>,
    pub buttons: Vec<Button>,
}

#[derive(Clone, Debug, Default)]
pub struct Button {
    pub name: Option<String>,
    pub value: Option<String>,
    pub text: String,
}

impl Form {
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, _)| n == name)
    }

    /// The submit button whose value or label contains `word` (case-insensitive).
    pub fn button_like(&self, word: &str) -> Option<&Button> {
        self.buttons.iter().find(|b| {
            b.value
                .as_deref()
                .is_some_and(|v| v.to_lowercase().contains(word))
                || b.text.to_lowercase().contains(word)
        })
    }
}

/// The forms of a page, in order.
pub fn forms(html: &str) -> Vec<Form> {
    let mut forms = Vec::new();
    let mut current: Option<Form> = None;
    for tag in tags(html) {
        match (tag.name.as_str(), current.as_mut()) {
            ("form", _) => {
                current = Some(Form {
                    action: tag.attr("action"),
                    method: tag.attr("method").unwrap_or_else(|| "get".to_owned()),
                    ..Form::default()
                });
            }
            ("/form", Some(_)) => forms.extend(current.take()),
            ("input", Some(form)) => {
                let kind = tag.attr("type").unwrap_or_default().to_lowercase();
                match (kind.as_str(), tag.attr("name")) {
                    ("submit", _) => form.buttons.push(Button {
                        name: tag.attr("name"),
                        value: tag.attr("value"),
                        text: String::new(),
                    }),
                    ("checkbox" | "radio", Some(name)) if tag.attr("checked").is_some() => {
                        form.fields
                            .push((name, tag.attr("value").unwrap_or_else(|| "on".to_owned())));
                    }
                    ("checkbox" | "radio", _) => {}
                    (_, Some(name)) => form
                        .fields
                        .push((name, tag.attr("value").unwrap_or_default())),
                    (_, None) => {}
                }
            }
            ("button", Some(form)) => {
                let kind = tag.attr("type").unwrap_or_else(|| "submit".to_owned());
                if kind.eq_ignore_ascii_case("submit") {
                    form.buttons.push(Button {
                        name: tag.attr("name"),
                        value: tag.attr("value"),
                        text: unescape(tag.text_after.trim()),
                    });
                }
            }
            _ => {}
        }
    }
    forms
}

struct Tag<'a> {
    /// Lower-cased; end tags start with `/`.
    name: String,
    attrs: Vec<(String, Option<String>)>,
    /// The text up to the next tag.
    text_after: &'a str,
}

impl Tag<'_> {
    fn attr(&self, name: &str) -> Option<String> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().map(unescape).unwrap_or_default())
    }
}

fn tags(html: &str) -> Vec<Tag<'_>> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if let Some(after_comment) = rest.strip_prefix("!--") {
            rest = after_comment
                .find("-->")
                .map_or("", |end| &after_comment[end + 3..]);
            continue;
        }
        let end = rest.find('>').unwrap_or(rest.len());
        let inside = rest[..end].trim_end_matches('/');
        rest = rest.get(end + 1..).unwrap_or("");
        let name_end = inside
            .find(|c: char| c.is_whitespace())
            .unwrap_or(inside.len());
        let name = inside[..name_end].to_lowercase();
        let attrs = attributes(&inside[name_end..]);
        let text_after = &rest[..rest.find('<').unwrap_or(rest.len())];
        out.push(Tag {
            name,
            attrs,
            text_after,
        });
    }
    out
}

fn attributes(mut s: &str) -> Vec<(String, Option<String>)> {
    let mut attrs = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return attrs;
        }
        let name_end = s
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(s.len());
        let name = s[..name_end].to_lowercase();
        s = s[name_end..].trim_start();
        let value = if let Some(after) = s.strip_prefix('=') {
            let after = after.trim_start();
            let (value, rest) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let close = after[1..].find(q).map_or(after.len(), |i| i + 1);
                    (&after[1..close], after.get(close + 1..).unwrap_or(""))
                }
                _ => {
                    let end = after
                        .find(|c: char| c.is_whitespace())
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            s = rest;
            Some(value.to_owned())
        } else {
            None
        };
        attrs.push((name, value));
    }
}

/// Decodes the character references askama and hand-written HTML use.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn the_form_reader_finds_hidden_fields_and_buttons_with_escaped_values() {
    let html = r#"<form method="post" action="/consent?x=1&amp;y=2">
      <input type="hidden" name="csrf_token" value="a&#43;b&#x2F;c">
      <input name=email type=email autocomplete="username">
      <input type="checkbox" name="remember">
      <button type="submit" name="decision" value="deny">Deny</button>
      <button name="decision" value="allow">Allow</button>
    </form><!-- <form> -->"#;
    let forms = forms(html);
    assert_eq!(forms.len(), 1);
    let form = &forms[0];
    assert_eq!(form.action.as_deref(), Some("/consent?x=1&y=2"));
    assert_eq!(
        form.fields,
        vec![
            ("csrf_token".to_owned(), "a+b/c".to_owned()),
            ("email".to_owned(), String::new())
        ]
    );
    let allow = form.button_like("allow").unwrap();
    assert_eq!(allow.value.as_deref(), Some("allow"));
    assert_eq!(allow.text, "Allow");
}
