//! The `renkei` binary: parse the command line, load configuration, run the command.

use std::process::ExitCode;

use clap::Parser;
use renkei::config::{Cli, Command, Config};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    // Commands whose output is for a script log only warnings, to stderr.
    renkei::telemetry::init(if matches!(command, Command::Serve | Command::Migrate) { "info" } else { "warn" });
    match run(command, &cli.global) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("renkei: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, args: &renkei::config::GlobalArgs) -> Result<(), String> {
    match command {
        Command::Openapi => {
            println!("{}", renkei::api::openapi_json());
            Ok(())
        }
        Command::Token(t) => {
            let config = Config::load(args)?;
            let ttl = renkei::auth::jwt::parse_ttl(&t.ttl)?;
            let token = renkei::auth::jwt::sign(&config.jwt, &t.sub, &t.org, &t.roles, ttl)?;
            println!("{token}");
            Ok(())
        }
        Command::Migrate => {
            let config = Config::load(args)?;
            let db = renkei::db::Db::connect(&config.db)?;
            let applied = db.migrate()?;
            tracing::info!(applied, backend = db.backend(), "migrations up to date");
            Ok(())
        }
        Command::Serve => {
            // First of all, before any thread, file or connection: this may start the program
            // again (src/malloc.rs).
            let arenas = args.malloc_arenas.unwrap_or_else(renkei::malloc::per_core);
            renkei::malloc::check(arenas)?;
            if let Err(e) = renkei::malloc::limit_arenas(arenas) {
                tracing::warn!(error = %e, "glibc's default allocator arenas stay in force");
            }
            let config = Config::load(args)?;
            actix_web::rt::System::new().block_on(async move {
                let app = renkei::Application::build(&config)?;
                app.run_until_stopped().await.map_err(|e| format!("server error: {e}"))
            })
        }
    }
}
