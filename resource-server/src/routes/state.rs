//! [`AppState`]: what the handlers share, each part reachable through `FromRef`. The
//! wiring ([`crate::startup`]) builds it.

use std::sync::Arc;

use axum::extract::FromRef;
use service_kit::db::Database;

use crate::auth::TokenValidator;
use crate::auth::events::EventReceiver;
use crate::profiles::Profiles;
use crate::settings::Settings;

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Database,
    pub profiles: Profiles,
    pub validator: TokenValidator,
    /// Receives the idp's security events into the validator's revocations.
    pub events: EventReceiver,
}

impl FromRef<AppState> for TokenValidator {
    fn from_ref(state: &AppState) -> Self {
        state.validator.clone()
    }
}

impl FromRef<AppState> for EventReceiver {
    fn from_ref(state: &AppState) -> Self {
        state.events.clone()
    }
}

impl FromRef<AppState> for Arc<Settings> {
    fn from_ref(state: &AppState) -> Self {
        state.settings.clone()
    }
}

impl FromRef<AppState> for Profiles {
    fn from_ref(state: &AppState) -> Self {
        state.profiles.clone()
    }
}
