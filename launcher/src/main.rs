//! Local all-in-one: `cargo run --release` starts the idp and the resource server in one
//! process, each configured from its own environment variables (IDP_*, RS_*) with
//! defaults that work on a fresh machine (SQLite under data/, keys under keys/). The
//! resource server is connected to the idp's security events with no manual step: a
//! stream called `resource-server` pushing to its `/events`, with a bearer value made at
//! each start (or `RS_EVENTS_AUTHORIZATION` when set). Deployments run the `idp` and
//! `resource-server` binaries separately and make that one `idp streams create`
//! themselves (docs/events.md).

use std::net::SocketAddr;

use anyhow::Context;
use idp::events::streams::NewStream;
use jwt_auth::events::config::ReceiverAuthorization;

/// What the stream of the launched resource server is called.
const STREAM_NAME: &str = "resource-server";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_kit::telemetry::init("info,sqlx=warn");
    service_kit::process::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let idp = idp::app::startup::Application::build(idp::app::settings::Settings::load()?).await?;
    let mut settings = resource_server::settings::Settings::load()?;
    let authorization = match std::env::var("RS_EVENTS_AUTHORIZATION") {
        Ok(value) => value,
        Err(_) => {
            let value = format!("Bearer {}", idp::guards::secrets::random_token(32));
            settings.events_authorization = Some(
                ReceiverAuthorization::parse(value.clone())
                    .context("A generated authorization value was refused")?,
            );
            value
        }
    };
    let audience = settings.audience.clone();
    let listen: SocketAddr = settings
        .listen
        .parse()
        .context("RS_LISTEN is not an address")?;
    let users = resource_server::startup::Application::build(settings).await?;
    let listening = SocketAddr::new(listen.ip(), users.port());
    let push_url = format!("{}/events", local_url(listening));
    idp.streams()
        .create(
            NewStream {
                name: STREAM_NAME.to_owned(),
                push_url: push_url.clone(),
                audience,
                events: vec![],
                auth_header: Some(authorization),
            },
            true,
        )
        .await
        .context("Failed to connect the resource server to the idp's events")?;
    tracing::info!(
        idp_port = idp.port(),
        resource_server_port = users.port(),
        events = %push_url,
        "Both services are up, the resource server receiving the idp's security events; ctrl-c stops them"
    );
    tokio::try_join!(idp.run_until_stopped(), users.run_until_stopped())?;
    Ok(())
}

/// An address this process can reach the resource server at.
fn local_url(listening: SocketAddr) -> String {
    let host = if listening.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        listening.ip().to_string()
    };
    match listening {
        SocketAddr::V4(_) => format!("http://{host}:{}", listening.port()),
        SocketAddr::V6(_) => format!("http://[{host}]:{}", listening.port()),
    }
}
