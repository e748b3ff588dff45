//! Local all-in-one: `cargo run --release` starts the idp and the resource server in one
//! process, each configured from its own environment variables (IDP_*, RS_*) with
//! defaults that work on a fresh machine (SQLite under data/, keys under keys/).
//! Deployments run the `idp` and `resource-server` binaries separately.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_kit::telemetry::init("info,sqlx=warn");
    service_kit::process::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let idp = idp::app::startup::Application::build(idp::app::settings::Settings::load()?).await?;
    let users =
        resource_server::startup::Application::build(resource_server::settings::Settings::load()?)
            .await?;
    tracing::info!(
        idp_port = idp.port(),
        resource_server_port = users.port(),
        "Both services are up; ctrl-c stops them"
    );
    tokio::try_join!(idp.run_until_stopped(), users.run_until_stopped())?;
    Ok(())
}
