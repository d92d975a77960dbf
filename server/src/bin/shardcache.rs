//! The `shardcache` binary: parse options, set up logging, serve until SIGTERM/SIGINT.

use std::process::ExitCode;
use std::time::Duration;

use shardcache_config::{Config, LogFormat, Tool};
use shardcache_server::{health, Listening};
use tracing_subscriber::EnvFilter;

/// mimalloc: per-thread free lists and size classes that fit small entries exactly (see
/// `shardcache_storage::memory`, whose accounting follows them).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sets mimalloc's `arena_eager_commit` option off before the allocator's first use (an
/// ELF constructor runs before `main` and before Rust's runtime allocates), so arena memory
/// is committed as it is used rather than a whole chunk at start.
#[cfg(all(feature = "mimalloc", target_os = "linux"))]
#[used]
#[link_section = ".init_array"]
static MIMALLOC_OPTIONS: extern "C" fn() = {
    extern "C" fn set_options() {
        /// `mi_option_arena_eager_commit` in mimalloc's `mi_option_e`.
        const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
        // SAFETY: runs single-threaded before main; sets a plain option value.
        unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) }
    }
    set_options
};

fn main() -> ExitCode {
    let config = match Config::parse_from_env_and_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shardcache: {e}");
            return ExitCode::from(2);
        }
    };
    // The control thread's runtime: signals, the accept loop, the metrics endpoint. Clients
    // are served by the worker threads `serve` starts (see `server.rs`).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("shardcache-control")
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
    adjust_open_files_limit(config.maxclients);
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

/// File descriptors kept beyond `maxclients` for the listeners, the metrics endpoint, logs.
const RESERVED_FDS: u64 = 32;

/// Raises the soft `RLIMIT_NOFILE` towards `maxclients + 32` (never above the hard limit), as
/// Redis's `adjustOpenFilesLimit` does: the common default soft limit of 1024 would otherwise
/// make `accept` fail with EMFILE long before `maxclients`.
fn adjust_open_files_limit(maxclients: usize) {
    let want = (maxclients as u64).saturating_add(RESERVED_FDS);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    let soft: u64 = lim.rlim_cur;
    let hard: u64 = lim.rlim_max;
    if soft >= want {
        return;
    }
    let target = want.min(hard);
    if target > soft {
        let new = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
            tracing::info!(
                from = soft,
                to = target,
                "raised the open files limit (RLIMIT_NOFILE)"
            );
        } else {
            tracing::warn!(soft, hard, "could not raise the open files limit");
        }
    }
    if target < want {
        tracing::warn!(
            open_files_limit = target,
            maxclients,
            "the hard open files limit is below maxclients + 32: accepts will fail with EMFILE \
             (and back off) before maxclients is reached; raise it with ulimit -n or LimitNOFILE"
        );
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Install the handlers before binding, so a signal that arrives as soon as the server
    // says it is ready is already ours (not the default action, which kills the process).
    let shutdown = shutdown_signal()?;
    let listening = Listening::bind(config).await?;
    listening.serve(shutdown).await
}

/// Installs SIGTERM and SIGINT handlers now; the returned future completes on the first one.
///
/// # Errors
/// When a handler cannot be installed.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("received SIGTERM"),
            _ = int.recv() => tracing::info!("received SIGINT"),
        }
    })
}
