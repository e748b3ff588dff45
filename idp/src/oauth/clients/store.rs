//! The `clients` table. Lists are stored as JSON arrays (URIs) or space-separated
//! tokens (scopes, grant types) and parsed back into domain types here.

use anyhow::{Context, anyhow};
use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::oauth::Scope;
use crate::oauth::clients::model::{
    AuthMethod, BackchannelLogout, Client, ClientId, ClientType, ConsentPolicy, GrantType,
    PkcePolicy, RedirectUri,
};

const COLUMNS: &str = "client_id, name, client_type, token_endpoint_auth_method, redirect_uris, \
     post_logout_redirect_uris, allowed_scopes, grant_types, skip_consent, require_pkce, require_mfa, \
     backchannel_logout_uri, backchannel_logout_session_required, created_at";

pub async fn insert(
    pool: &AnyPool,
    client: &Client,
    secret_hash: Option<&str>,
) -> anyhow::Result<()> {
    let uris = |list: &[RedirectUri]| {
        serde_json::to_string(&list.iter().map(AsRef::as_ref).collect::<Vec<&str>>())
    };
    let grants: Vec<&str> = client.grant_types.iter().map(|g| g.as_str()).collect();
    sqlx::query(
        "INSERT INTO clients (client_id, name, client_type, secret_hash, token_endpoint_auth_method, \
         redirect_uris, post_logout_redirect_uris, allowed_scopes, grant_types, skip_consent, \
         require_pkce, require_mfa, backchannel_logout_uri, backchannel_logout_session_required, \
         created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(client.id.as_ref())
    .bind(&client.name)
    .bind(client.client_type.as_str())
    .bind(secret_hash)
    .bind(client.auth_method.as_str())
    .bind(uris(&client.redirect_uris)?)
    .bind(uris(&client.post_logout_redirect_uris)?)
    .bind(client.allowed_scope.to_string())
    .bind(grants.join(" "))
    .bind(i64::from(client.consent == ConsentPolicy::Skip))
    .bind(i64::from(client.pkce == PkcePolicy::Required))
    .bind(i64::from(client.require_mfa))
    .bind(client.backchannel_logout.as_ref().map(|b| b.uri.as_str()))
    .bind(i64::from(
        client
            .backchannel_logout
            .as_ref()
            .is_some_and(|b| b.session_required),
    ))
    .bind(client.created_at)
    .execute(pool)
    .await
    .context("Failed to insert a client")?;
    Ok(())
}

/// The client and its secret hash.
pub async fn find(
    pool: &AnyPool,
    client_id: &str,
) -> anyhow::Result<Option<(Client, Option<String>)>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, secret_hash FROM clients WHERE client_id = $1"
    ))
    .bind(client_id)
    .fetch_optional(pool)
    .await
    .context("Failed to look up a client")?;
    row.map(|row| {
        let hash: Option<String> = row.try_get("secret_hash")?;
        Ok((from_row(&row)?, hash))
    })
    .transpose()
}

pub async fn list(pool: &AnyPool) -> anyhow::Result<Vec<Client>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM clients ORDER BY created_at, client_id"
    ))
    .fetch_all(pool)
    .await
    .context("Failed to list clients")?;
    rows.iter().map(from_row).collect()
}

pub async fn delete(pool: &AnyPool, client_id: &str) -> anyhow::Result<bool> {
    let result = sqlx::query("DELETE FROM clients WHERE client_id = $1")
        .bind(client_id)
        .execute(pool)
        .await
        .context("Failed to delete a client")?;
    Ok(result.rows_affected() > 0)
}

fn from_row(row: &AnyRow) -> anyhow::Result<Client> {
    let text = |name: &str| -> anyhow::Result<String> { Ok(row.try_get::<String, _>(name)?) };
    let uris = |name: &str| -> anyhow::Result<Vec<RedirectUri>> {
        let list: Vec<String> = serde_json::from_str(&text(name)?)?;
        list.iter()
            .map(|u| RedirectUri::parse(u).map_err(|e| anyhow!("stored redirect URI {e}")))
            .collect()
    };
    let grant_types = text("grant_types")?
        .split(' ')
        .filter(|g| !g.is_empty())
        .map(|g| GrantType::parse(g).ok_or_else(|| anyhow!("unknown stored grant type")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Client {
        id: ClientId::parse(&text("client_id")?)
            .ok_or_else(|| anyhow!("invalid stored client id"))?,
        name: text("name")?,
        client_type: ClientType::parse(&text("client_type")?)
            .ok_or_else(|| anyhow!("invalid stored client type"))?,
        auth_method: AuthMethod::parse(&text("token_endpoint_auth_method")?)
            .ok_or_else(|| anyhow!("invalid stored auth method"))?,
        redirect_uris: uris("redirect_uris")?,
        post_logout_redirect_uris: uris("post_logout_redirect_uris")?,
        allowed_scope: Scope::parse(&text("allowed_scopes")?)
            .map_err(|_| anyhow!("invalid stored scope"))?,
        grant_types,
        consent: if row.try_get::<i64, _>("skip_consent")? != 0 {
            ConsentPolicy::Skip
        } else {
            ConsentPolicy::Ask
        },
        pkce: if row.try_get::<i64, _>("require_pkce")? != 0 {
            PkcePolicy::Required
        } else {
            PkcePolicy::Optional
        },
        require_mfa: row.try_get::<i64, _>("require_mfa")? != 0,
        backchannel_logout: row
            .try_get::<Option<String>, _>("backchannel_logout_uri")?
            .map(|uri| -> anyhow::Result<BackchannelLogout> {
                Ok(BackchannelLogout {
                    uri,
                    session_required: row
                        .try_get::<i64, _>("backchannel_logout_session_required")?
                        != 0,
                })
            })
            .transpose()?,
        created_at: row.try_get("created_at")?,
    })
}
