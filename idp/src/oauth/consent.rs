//! Remembered consent: what a user agreed to share with a client, so they are asked
//! again only when a request wants more (or with `prompt=consent`).

use sqlx::AnyPool;

use crate::oauth::Scope;
use crate::oauth::store::consents as store;

/// The scope the user already agreed to share with the client.
pub async fn remembered(
    pool: &AnyPool,
    user_id: &str,
    client_id: &str,
) -> anyhow::Result<Option<Scope>> {
    Ok(store::find(pool, user_id, client_id)
        .await?
        // A stored scope that no longer parses counts as no consent: ask again.
        .and_then(|text| Scope::parse(&text).ok()))
}

/// Records that the user allowed `scope`: added to what they allowed before, since
/// agreeing to `email` today does not withdraw yesterday's `profile`.
pub async fn grant(
    pool: &AnyPool,
    user_id: &str,
    client_id: &str,
    scope: &Scope,
    now: i64,
) -> anyhow::Result<()> {
    let previous = remembered(pool, user_id, client_id).await?;
    let combined = match previous {
        // Both parsed before, so their concatenation parses: a set union.
        Some(previous) => format!("{previous} {scope}"),
        None => scope.to_string(),
    };
    let combined = Scope::parse(&combined).map_err(anyhow::Error::new)?;
    store::upsert(pool, user_id, client_id, &combined.to_string(), now).await?;
    tracing::info!(client_id, user_id, "Consent recorded");
    Ok(())
}

/// A scope token in words a user understands, for the consent page.
pub fn describe(scope_token: &str) -> String {
    match scope_token {
        "openid" => "Recognise you (a unique ID for your account)".to_owned(),
        "profile" => "See your name".to_owned(),
        "email" => "See your email address".to_owned(),
        "users:read" => "Read your profile at the user service".to_owned(),
        "users:write" => "Change your profile at the user service".to_owned(),
        "users:admin" => "Manage every user's profile (administrator access)".to_owned(),
        "offline_access" => "Keep access while you are away".to_owned(),
        other => format!("Access \u{201c}{other}\u{201d}"),
    }
}
