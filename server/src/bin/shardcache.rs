//! The `shardcache` binary: parse options, set up logging, serve until SIGTERM/SIGINT.

use std::process::ExitCode;
use std::time::Duration;

use shardcache_config::{Config, LogFormat, Tool};
use shardcache_server::{health, Listening};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = match Config::parse_from_env_and_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shardcache: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("shardcache-worker")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shardcache: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Tool::Health {
        host,
        port,
        timeout_ms,
        password,
    }) = &config.tool
    {
        let r = runtime.block_on(health::check(
            host,
            *port,
            password.as_deref(),
            Duration::from_millis(*timeout_ms),
        ));
        return match r {
            Ok(()) => {
                println!("PONG");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("shardcache health: {e}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging(&config);
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("shardcache: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_writer(std::io::stdout);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listening = Listening::bind(config).await?;
    listening.serve(shutdown_signal()).await
}

/// Completes on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("received SIGTERM"),
                _ = int.recv() => tracing::info!("received SIGINT"),
            }
        }
        _ => {
            // Without signal handlers, fall back to Ctrl-C handling.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
