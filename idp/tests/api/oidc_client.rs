//! The whole authorization code flow with the `openidconnect` crate as the relying
//! party: discovery, PKCE S256 + nonce + state, sign-in and consent through the idp's
//! pages (a cookie-keeping HTTP client), RFC 9207 `iss`, the code exchange, ID token
//! verification (signature, nonce, at_hash; `acr` and `amr` read), userinfo, refresh,
//! introspection and revocation. Once for a confidential client (`client_secret_basic`)
//! and once for a public one (`none`).

use openidconnect::core::{
    CoreAuthenticationFlow, CoreErrorResponseType, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RequestTokenError, Scope, StandardErrorResponse, TokenIntrospectionResponse, TokenResponse,
};
use serde_json::Value;

use crate::helpers::{AUDIENCE, decode_jwt, spawn_app, verify_independently};
use crate::oidc_helpers::{
    ClientKind, back_channel, cookie_browser, discover, register_client, rp_client,
    sign_in_through_pages,
};

/// Never contacted: the test reads the redirect from the idp's `Location` header.
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

#[tokio::test]
async fn a_confidential_client_signs_a_person_in_with_openidconnect_and_refreshes_and_revokes() {
    run_code_flow(ClientKind::Confidential).await;
}

#[tokio::test]
async fn a_public_client_signs_a_person_in_with_openidconnect_and_refreshes_and_revokes() {
    run_code_flow(ClientKind::Public).await;
}

async fn run_code_flow(kind: ClientKind) {
    let app = spawn_app().await;
    let email = "grace@example.com";
    let user_id = app.register(email).await;
    let registered = register_client(&app, kind, REDIRECT_URI, &[]).await;
    assert_eq!(
        registered.secret.is_some(),
        kind == ClientKind::Confidential
    );

    // Discovery, as openidconnect parses it.
    let metadata = discover(&app).await;
    assert_eq!(metadata.issuer().as_str(), app.issuer);
    let client = rp_client(&metadata, &registered);

    // The authorization request, and a person signing in and consenting.
    let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".to_owned()))
        .add_scope(Scope::new("email".to_owned()))
        .add_scope(Scope::new("users:read".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    let sign_in =
        sign_in_through_pages(&cookie_browser(), &authorize_url, email, REDIRECT_URI).await;
    assert!(
        sign_in.pages.iter().any(|p| p == "/login")
            && sign_in.pages.iter().any(|p| p == "/consent"),
        "a fresh browser sees the login and consent pages: {:?}",
        sign_in.pages
    );
    assert_eq!(
        sign_in.param("state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        sign_in.param("iss").as_deref(),
        Some(app.issuer.as_str()),
        "RFC 9207"
    );
    let code = sign_in.param("code").expect("the redirect carries a code");
    let http = back_channel();

    // The code exchange (client_secret_basic or none, with the PKCE verifier).
    let tokens: CoreTokenResponse = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(pkce_verifier)
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("code exchange: {}", describe(&e)));

    // The ID token: RS256 signature against the JWKS, iss, aud, exp, nonce; at_hash.
    let id_token = tokens.id_token().expect("an ID token for scope openid");
    let id_verifier = client.id_token_verifier();
    let claims = id_token.claims(&id_verifier, &nonce).unwrap().clone();
    assert_eq!(claims.subject().as_str(), user_id);
    assert_eq!(claims.issuer().as_str(), app.issuer);
    assert_eq!(claims.audiences().len(), 1);
    assert_eq!(claims.audiences()[0].as_str(), registered.id);
    let auth_time = claims.auth_time().expect("auth_time");
    // How the person signed in, as the relying party's library reads it.
    assert_eq!(
        claims.auth_context_ref().map(|acr| acr.as_str()),
        Some("urn:idp:acr:pwd")
    );
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .expect("amr")
        .iter()
        .map(|m| m.as_str())
        .collect();
    assert_eq!(amr, ["pwd"]);
    assert_eq!(claims.email().map(|e| e.as_str()), Some(email));
    let at_hash = claims.access_token_hash().expect("at_hash");
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(at_hash, &expected);

    // The access token: an RS256 at+jwt for the resource server (RFC 9068).
    let jwks = app.get_json("/jwks").await;
    let access_token = tokens.access_token().secret();
    assert!(verify_independently(access_token, &jwks));
    let (header, at) = decode_jwt(access_token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");
    assert!(audience_contains(&at["aud"], AUDIENCE), "{at}");
    assert_eq!(at["iss"], app.issuer.as_str());
    assert_eq!(at["sub"], user_id.as_str());
    assert_eq!(at["client_id"], registered.id.as_str());
    let scope = at["scope"].as_str().unwrap_or_default();
    assert!(scope.split(' ').any(|s| s == "users:read"), "{scope}");
    assert!(
        !scope.split(' ').any(|s| s == "users:write"),
        "only what was asked for: {scope}"
    );

    // Userinfo, with the subject checked against the ID token's.
    let userinfo: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("userinfo: {e:?}"));
    assert_eq!(userinfo.email().map(|e| e.as_str()), Some(email));

    // Refresh: a new ID token for the same person and authentication, a rotated
    // refresh token.
    let refresh_token = tokens.refresh_token().expect("a refresh token");
    let refreshed: CoreTokenResponse = client
        .exchange_refresh_token(refresh_token)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("refresh: {}", describe(&e)));
    let new_refresh_token = refreshed.refresh_token().expect("a rotated refresh token");
    assert_ne!(new_refresh_token.secret(), refresh_token.secret());
    let new_id_token = refreshed.id_token().expect("a new ID token on refresh");
    // OIDC Core 12.2: a nonce on a refreshed ID token, if any, is the original one.
    let new_claims = new_id_token
        .claims(&id_verifier, |n: Option<&Nonce>| match n {
            Some(n) if n.secret() != nonce.secret() => Err("another nonce".to_owned()),
            _ => Ok(()),
        })
        .unwrap();
    assert_eq!(new_claims.subject(), claims.subject());
    assert_eq!(new_claims.audiences(), claims.audiences());
    assert_eq!(new_claims.issuer(), claims.issuer());
    assert_eq!(new_claims.auth_time(), Some(auth_time));
    assert!(new_claims.issue_time() >= claims.issue_time());

    // Introspection (confidential clients only: it needs client authentication).
    if kind == ClientKind::Confidential {
        let introspection = client
            .introspect(refreshed.access_token())
            .request_async(&http)
            .await
            .unwrap();
        assert!(introspection.active());
    }

    // Revoking the refresh token ends the grant: no more refreshing, and the access
    // tokens of the grant are refused by userinfo.
    // openidconnect (oauth2) refuses RFC 7009 revocation over plain http, as §2 tells
    // clients to, and the idp under test is http on loopback: the request by hand.
    let revocation = &metadata.additional_metadata().revocation_endpoint;
    let mut form = vec![
        ("token", new_refresh_token.secret().as_str()),
        ("token_type_hint", "refresh_token"),
    ];
    let request = http.post(revocation.url().as_str());
    let request = match &registered.secret {
        Some(secret) => request.basic_auth(&registered.id, Some(secret)),
        None => {
            form.push(("client_id", registered.id.as_str()));
            request
        }
    };
    let request = request.form(&form);
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let error = client
        .exchange_refresh_token(new_refresh_token)
        .unwrap()
        .request_async(&http)
        .await
        .expect_err("a revoked refresh token is refused");
    match error {
        RequestTokenError::ServerResponse(response) => {
            assert_eq!(response.error(), &CoreErrorResponseType::InvalidGrant);
        }
        other => panic!("expected invalid_grant, got {}", describe(&other)),
    }
    let response = http
        .get(format!("{}/userinfo", app.issuer))
        .bearer_auth(refreshed.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    if kind == ClientKind::Confidential {
        let introspection = client
            .introspect(refreshed.access_token())
            .request_async(&http)
            .await
            .unwrap();
        assert!(!introspection.active(), "revoked with its grant");
    }
}

fn audience_contains(aud: &Value, audience: &str) -> bool {
    match aud {
        Value::String(s) => s == audience,
        Value::Array(items) => items.iter().any(|a| a == audience),
        _ => false,
    }
}

/// A token endpoint error with the server's answer, for failure messages.
fn describe<RE: std::error::Error + 'static>(
    error: &RequestTokenError<RE, StandardErrorResponse<CoreErrorResponseType>>,
) -> String {
    match error {
        RequestTokenError::ServerResponse(r) => format!("server answered {r:?}"),
        RequestTokenError::Parse(e, body) => {
            format!("unparsable answer ({e}): {}", String::from_utf8_lossy(body))
        }
        other => format!("{other:?}"),
    }
}
