//! The profile API: `/users/me`, `/users/{id}` (GET, PUT, DELETE) and `/users` (list).
//! Every route needs a bearer token; what it may do is decided by [`crate::profiles`].

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use service_kit::api_error::{ApiError, ApiJson};

use super::paths;
use crate::auth::{
    self, AccessTokenClaims, BearerClaims, insufficient_scope, insufficient_user_authentication,
};
use crate::domain::{AccessDenied, Caller, PageRequest, Profile, ProfileUpdate, UserId};
use crate::profiles::{ProfileError, Profiles};
use crate::routes::state::AppState;
use crate::settings::Settings;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(paths::ME, get(me))
        .route(
            paths::USER,
            get(get_profile).put(update_profile).delete(delete_profile),
        )
        .route(paths::USERS, get(list_profiles))
}

#[derive(Serialize)]
struct ProfileBody {
    id: String,
    name: String,
    email: String,
    bio: String,
    created_at: String,
    updated_at: String,
}

impl From<Profile> for ProfileBody {
    fn from(profile: Profile) -> Self {
        Self {
            id: profile.id.to_string(),
            name: profile.name.as_ref().to_owned(),
            email: profile.email,
            bio: profile.bio.as_ref().to_owned(),
            created_at: rfc3339(profile.created_at),
            updated_at: rfc3339(profile.updated_at),
        }
    }
}

#[derive(Serialize)]
struct ProfileListBody {
    items: Vec<ProfileBody>,
    page: u32,
    per_page: u32,
    total: u64,
}

/// The only fields a client may change. Anything else (`email`, `id`, ...) is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateProfileBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    bio: Option<String>,
}

#[derive(Deserialize)]
struct ListQuery {
    page: Option<String>,
    per_page: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn me(
    BearerClaims(claims): BearerClaims,
    State(profiles): State<Profiles>,
) -> Result<ApiJson<ProfileBody>, ApiError> {
    let profile = profiles.me(&caller(&claims)).await?;
    Ok(ApiJson(profile.into()))
}

#[tracing::instrument(skip_all)]
async fn get_profile(
    BearerClaims(claims): BearerClaims,
    State(profiles): State<Profiles>,
    id: Result<Path<String>, PathRejection>,
) -> Result<ApiJson<ProfileBody>, ApiError> {
    let id = user_id(id).ok_or_else(ApiError::not_found)?;
    let profile = profiles.get(&caller(&claims), &id).await?;
    Ok(ApiJson(profile.into()))
}

#[tracing::instrument(skip_all)]
async fn update_profile(
    BearerClaims(claims): BearerClaims,
    State(profiles): State<Profiles>,
    id: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<UpdateProfileBody>,
) -> Result<ApiJson<ProfileBody>, ApiError> {
    let id = user_id(id).ok_or_else(ApiError::not_found)?;
    let update = ProfileUpdate::parse(body.name, body.bio).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_profile",
            e.to_string(),
        )
    })?;
    let profile = profiles.update(&caller(&claims), &id, &update).await?;
    Ok(ApiJson(profile.into()))
}

#[tracing::instrument(skip_all)]
async fn delete_profile(
    BearerClaims(claims): BearerClaims,
    State(profiles): State<Profiles>,
    State(settings): State<Arc<Settings>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    if let Some(required) = &settings.delete_requires_acr
        && claims.acr.as_deref() != Some(required.as_str())
    {
        return Err(auth::api_error(insufficient_user_authentication(required)));
    }
    let id = user_id(id).ok_or_else(ApiError::not_found)?;
    profiles.delete(&caller(&claims), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[tracing::instrument(skip_all)]
async fn list_profiles(
    BearerClaims(claims): BearerClaims,
    State(profiles): State<Profiles>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<ApiJson<ProfileListBody>, ApiError> {
    let invalid_query =
        |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message);
    let Query(query) = query.map_err(|_| {
        invalid_query(
            "The query string could not be read: give page and per_page once each.".into(),
        )
    })?;
    let request = PageRequest::parse(query.page.as_deref(), query.per_page.as_deref())
        .map_err(|e| invalid_query(e.to_string()))?;
    let page = profiles.list(&caller(&claims), request).await?;
    Ok(ApiJson(ProfileListBody {
        items: page.items.into_iter().map(ProfileBody::from).collect(),
        page: page.request.page(),
        per_page: page.request.per_page(),
        total: page.total,
    }))
}

fn caller(claims: &AccessTokenClaims) -> Caller {
    Caller::new(
        &claims.subject,
        claims.email.as_deref(),
        claims.scopes.iter(),
    )
}

/// A path segment that is not a user id names no profile.
fn user_id(path: Result<Path<String>, PathRejection>) -> Option<UserId> {
    path.ok().and_then(|Path(raw)| UserId::parse(&raw))
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl From<ProfileError> for ApiError {
    fn from(error: ProfileError) -> Self {
        match error {
            ProfileError::Denied(denied @ AccessDenied::InsufficientScope { .. }) => {
                auth::api_error(insufficient_scope(
                    &denied.needed_scopes().unwrap_or_default(),
                ))
            }
            ProfileError::Denied(AccessDenied::NotAUser) => ApiError::new(
                StatusCode::FORBIDDEN,
                "not_a_user",
                "This access token was not issued to a user, so it has no profile.",
            ),
            ProfileError::NotFound => ApiError::not_found(),
            ProfileError::Unexpected(error) => ApiError::internal(&error),
        }
    }
}
