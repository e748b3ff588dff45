//! `cargo run -p example-rp`: reads `RP_*` settings, discovers the idp, serves the app.
//! See the library docs (or docs/example-rp.md) for the settings.

use anyhow::Context;
use example_rp::{Config, build};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = Config::from_env()?;
    let listen = config.listen.clone();
    let backchannel_logout_uri = config.backchannel_logout_uri()?;
    let app = build(config).await?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("Failed to listen on {listen}"))?;
    tracing::info!("Example relying party on http://{}", listener.local_addr()?);
    tracing::info!(
        "Logout tokens are taken at {backchannel_logout_uri}: register it with \
         `idp clients create ... --backchannel-logout-uri {backchannel_logout_uri}`"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("The server failed")
}
