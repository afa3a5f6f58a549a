//! How many arenas glibc's allocator may keep (docs/DESIGN.md §18).
//!
//! glibc lets threads create up to eight arenas per core, and each arena keeps the memory of its
//! own busiest moment. A server here runs about 28 threads (two HTTP workers, their blocking
//! threads, the writers), so it used 16 arenas, and its memory rose while each of them reached its
//! own high-water mark, one after another, for many minutes (docs/PERFORMANCE.md, round 11).
//!
//! The count can only be set before the allocator is first used: by `mallopt`, which would take
//! `unsafe` code (this crate forbids it), or by the `GLIBC_TUNABLES` variable, which glibc reads
//! when a program starts. So `renkei serve` starts itself again once, with the tunable added to
//! its environment (by default one arena per core), before it opens a thread or a connection:
//! the same process (`exec` keeps the pid), the same arguments and otherwise the same
//! environment. A tunable the operator set is theirs: an `arena_max` already in `GLIBC_TUNABLES`
//! is left as it is, and means no second start, so the start can never loop.

/// glibc's name for the most arenas its allocator may create.
pub const ARENA_MAX: &str = "glibc.malloc.arena_max";

/// The largest count `RENKEI_MALLOC_ARENAS` accepts (glibc's own default on an 8-core machine).
pub const MAX_ARENAS: u32 = 64;

/// The default count: one arena per core (at most [`MAX_ARENAS`]).
pub fn per_core() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| u32::try_from(n.get()).unwrap_or(MAX_ARENAS).min(MAX_ARENAS))
}

/// What `GLIBC_TUNABLES` must become for at most `arenas` arenas, given what it is: `None` when
/// nothing is to change (`arenas` is 0, glibc's default; or the operator set `arena_max`).
pub fn tunables_for(current: Option<&str>, arenas: u32) -> Option<String> {
    if arenas == 0 {
        return None;
    }
    let current = current.unwrap_or("");
    // The variable is a colon-separated list of `name=value`.
    if current.split(':').any(|t| t.split('=').next().is_some_and(|name| name.trim() == ARENA_MAX)) {
        return None;
    }
    let ours = format!("{ARENA_MAX}={arenas}");
    Some(if current.is_empty() { ours } else { format!("{current}:{ours}") })
}

/// The `arena_max` this process was started with, as `GLIBC_TUNABLES` gives it (for the log).
pub fn arena_max_in_force() -> Option<String> {
    let tunables = std::env::var("GLIBC_TUNABLES").ok()?;
    tunables.split(':').find_map(|t| {
        let (name, value) = t.split_once('=')?;
        (name.trim() == ARENA_MAX).then(|| value.trim().to_owned())
    })
}

/// Starts this program again with at most `arenas` allocator arenas, unless its environment
/// already says how many (see the module's documentation; `arenas` is checked by
/// `Config::load`). Returns only when it does not start again: `Ok` when there was nothing to
/// do, `Err` when the new start failed (the caller may go on with glibc's default).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_arenas(arenas: u32) -> Result<(), String> {
    use std::os::unix::process::CommandExt;

    let current = std::env::var("GLIBC_TUNABLES").ok();
    let Some(tunables) = tunables_for(current.as_deref(), arenas) else {
        return Ok(());
    };
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the program to start again: {e}"))?;
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    let error = command.args(args).env("GLIBC_TUNABLES", tunables).exec();
    Err(format!("cannot start again with {ARENA_MAX}={arenas}: {error}"))
}

/// Elsewhere the count is the platform allocator's business: nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas(_arenas: u32) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arena_count_is_added_to_the_tunables_unless_the_operator_set_one() {
        assert_eq!(tunables_for(None, 2).as_deref(), Some("glibc.malloc.arena_max=2"));
        assert_eq!(tunables_for(Some(""), 3).as_deref(), Some("glibc.malloc.arena_max=3"));
        // Other tunables stay, ours goes after them.
        assert_eq!(
            tunables_for(Some("glibc.malloc.tcache_count=0"), 2).as_deref(),
            Some("glibc.malloc.tcache_count=0:glibc.malloc.arena_max=2")
        );
        // The operator's own count wins, wherever it is in the list, whatever its value.
        assert_eq!(tunables_for(Some("glibc.malloc.arena_max=8"), 2), None);
        assert_eq!(tunables_for(Some("glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1"), 2), None);
        assert_eq!(tunables_for(Some("glibc.malloc.arena_max="), 2), None);
        // A name that only starts the same is another tunable.
        assert_eq!(
            tunables_for(Some("glibc.malloc.arena_test=4"), 2).as_deref(),
            Some("glibc.malloc.arena_test=4:glibc.malloc.arena_max=2")
        );
        // 0: glibc's default, nothing changes.
        assert_eq!(tunables_for(None, 0), None);
    }
}
