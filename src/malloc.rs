//! How many arenas glibc's allocator may keep (docs/DESIGN.md §18).
//!
//! glibc lets threads create up to eight arenas per core, and each arena keeps the memory of its
//! own busiest moment. A server here runs about 28 threads (two HTTP workers, their blocking
//! threads, the writers), so it used 16 arenas, and its memory rose while each of them reached its
//! own high-water mark, one after another, for many minutes (docs/PERFORMANCE.md, round 11).
//!
//! The count can only be set before the allocator is first used: by `mallopt`, which would take
//! `unsafe` code (this crate forbids it), or by the `GLIBC_TUNABLES` variable, which glibc reads
//! when a program starts. So `renkei serve`, before anything else, starts itself again once with
//! the tunable added to its environment (by default one arena per core; only two, on two cores,
//! were measured): the same process (`exec` keeps the pid), the same arguments, the same
//! environment plus `GLIBC_TUNABLES` and a marker. The operator's own count wins: an `arena_max`
//! in `GLIBC_TUNABLES`, or glibc's older `MALLOC_ARENA_MAX`, means no second start. The marker
//! means there is never a third, whatever glibc made of the variable (a program started with
//! raised privileges may have it removed).

/// glibc's name for the most arenas its allocator may create.
pub const ARENA_MAX: &str = "glibc.malloc.arena_max";

/// glibc's older variable for the same count, which operators may have set.
const ARENA_MAX_VARIABLE: &str = "MALLOC_ARENA_MAX";

/// Set on the second start: whatever glibc did with the tunable, there is never a third.
const RESTARTED: &str = "RENKEI_MALLOC_RESTARTED";

/// The largest count `RENKEI_MALLOC_ARENAS` accepts (glibc's own default on an 8-core machine).
pub const MAX_ARENAS: u32 = 64;

/// The default count: one arena per core (at most [`MAX_ARENAS`]).
pub fn per_core() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| u32::try_from(n.get()).unwrap_or(MAX_ARENAS).min(MAX_ARENAS))
}

/// Refuses a count beyond [`MAX_ARENAS`].
pub fn check(arenas: u32) -> Result<(), String> {
    if arenas > MAX_ARENAS {
        return Err(format!("RENKEI_MALLOC_ARENAS must be from 0 to {MAX_ARENAS}"));
    }
    Ok(())
}

/// The value of the `arena_max` entry of a `GLIBC_TUNABLES` list (`name=value:name=value`), read
/// as glibc reads it: the exact name, no spaces, `=` required.
fn arena_max_of(tunables: &str) -> Option<&str> {
    tunables.split(':').find_map(|t| t.split_once('=').filter(|(name, _)| *name == ARENA_MAX).map(|(_, v)| v))
}

/// What `GLIBC_TUNABLES` must become for at most `arenas` arenas, given what it is: `None` when
/// nothing is to change (`arenas` is 0, glibc's default; or the operator set `arena_max`).
pub fn tunables_for(current: Option<&str>, arenas: u32) -> Option<String> {
    let current = current.unwrap_or("");
    if arenas == 0 || arena_max_of(current).is_some() {
        return None;
    }
    let ours = format!("{ARENA_MAX}={arenas}");
    Some(if current.is_empty() { ours } else { format!("{current}:{ours}") })
}

/// The arena count this process was started with, for the log: `GLIBC_TUNABLES`'s, else
/// `MALLOC_ARENA_MAX`'s, else glibc's default.
pub fn arenas_in_force() -> String {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return "not glibc".to_owned();
    }
    let tunables = std::env::var("GLIBC_TUNABLES").ok();
    if let Some(n) = tunables.as_deref().and_then(arena_max_of) {
        return n.to_owned();
    }
    std::env::var(ARENA_MAX_VARIABLE).unwrap_or_else(|_| "glibc's default".to_owned())
}

/// Starts this program again with at most `arenas` allocator arenas, unless its environment
/// already says how many (see the module's documentation) or this is already the second start.
/// `arenas` must have passed [`check`]. Returns only when it does not start again: `Ok` when
/// there was nothing to do, `Err` when the new start failed (then glibc's default stays).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_arenas(arenas: u32) -> Result<(), String> {
    use std::os::unix::process::CommandExt;

    if std::env::var_os(RESTARTED).is_some() || std::env::var_os(ARENA_MAX_VARIABLE).is_some() {
        return Ok(());
    }
    let current = match std::env::var("GLIBC_TUNABLES") {
        Ok(v) => Some(v),
        Err(std::env::VarError::NotPresent) => None,
        // Not text: not ours to rewrite.
        Err(std::env::VarError::NotUnicode(_)) => return Ok(()),
    };
    let Some(tunables) = tunables_for(current.as_deref(), arenas) else {
        return Ok(());
    };
    let mut args = std::env::args_os();
    // The running program's own file, even if it was replaced or deleted since it started.
    let mut command = std::process::Command::new("/proc/self/exe");
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    let error = command.args(args).env("GLIBC_TUNABLES", tunables).env(RESTARTED, "1").exec();
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
        // What glibc would not read as `arena_max` (a space, no `=`) is not the operator's count.
        assert_eq!(
            tunables_for(Some(" glibc.malloc.arena_max=8"), 2).as_deref(),
            Some(" glibc.malloc.arena_max=8:glibc.malloc.arena_max=2")
        );
        assert_eq!(
            tunables_for(Some("glibc.malloc.arena_max"), 2).as_deref(),
            Some("glibc.malloc.arena_max:glibc.malloc.arena_max=2")
        );
        // A name that only starts the same is another tunable.
        assert_eq!(
            tunables_for(Some("glibc.malloc.arena_test=4"), 2).as_deref(),
            Some("glibc.malloc.arena_test=4:glibc.malloc.arena_max=2")
        );
        // 0: glibc's default, nothing changes.
        assert_eq!(tunables_for(None, 0), None);
    }

    #[test]
    fn counts_beyond_the_bound_are_refused() {
        assert_eq!(check(MAX_ARENAS), Ok(()));
        assert_eq!(check(MAX_ARENAS + 1), Err("RENKEI_MALLOC_ARENAS must be from 0 to 64".to_owned()));
    }
}
