//! How the process uses glibc's malloc for request bodies.
//!
//! glibc serves allocations above 128 KiB with a fresh `mmap` and unmaps them when freed, so
//! every large request body would be paid for again in page faults: a quarter of the time
//! of a 1 MiB POST. The server keeps them in the heap instead (an `mmap` only past 32 MiB,
//! no trimming on each free), so that the pages of one body serve the next, and gives the
//! freed memory back to the system once large bodies stop coming (a minute after the last:
//! a function that takes large bodies tends to take them again, and pages handed back are
//! paid for in page faults when they come).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bodies from this size on are the ones glibc would have mapped on their own.
const LARGE_BODY: usize = 128 * 1024;

/// How long after the last large body the freed memory is given back.
const TRIM_AFTER: Duration = Duration::from_secs(60);

/// glibc's bounds: the largest threshold it accepts is 32 MiB on 64-bit systems.
const MMAP_THRESHOLD: i32 = 32 * 1024 * 1024;
const TRIM_THRESHOLD: i32 = 1024 * 1024 * 1024;

/// Milliseconds since `EPOCH` of the last large body, and whether a trimmer waits for quiet.
static LAST_LARGE_BODY_MS: AtomicU64 = AtomicU64::new(0);
static TRIMMER: AtomicBool = AtomicBool::new(false);
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn now_ms() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Sets glibc's thresholds for serving: called once, before the server accepts.
#[allow(unsafe_code)]
pub(crate) fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc's allocator parameters; it takes the allocator's lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Notes a request body of `len` bytes; a large one schedules the memory's return for when
/// large bodies stop coming. Runs on the server's runtime.
pub(crate) fn body_read(len: usize) {
    if len >= LARGE_BODY {
        trim_when_quiet(TRIM_AFTER);
    }
}

/// Gives freed memory back once nothing has called this for `after`.
fn trim_when_quiet(after: Duration) {
    LAST_LARGE_BODY_MS.store(now_ms(), Ordering::Release);
    if TRIMMER.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async move {
        loop {
            let last = LAST_LARGE_BODY_MS.load(Ordering::Acquire);
            let quiet_for = Duration::from_millis(now_ms().saturating_sub(last));
            if quiet_for >= after {
                break;
            }
            tokio::time::sleep(after - quiet_for).await;
        }
        TRIMMER.store(false, Ordering::Release);
        // Off the runtime's threads: trimming walks every arena.
        let _ = tokio::task::spawn_blocking(release_freed_memory).await;
    });
}

/// Gives the memory the process has freed back to the system, in every malloc arena: glibc
/// keeps freed heap pages otherwise. nix has no call for this.
#[allow(unsafe_code)]
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap structures; it takes their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_trimmer_runs_once_large_bodies_stop() {
        let after = Duration::from_millis(200);
        trim_when_quiet(after);
        trim_when_quiet(after);
        assert!(TRIMMER.load(Ordering::Acquire));
        tokio::time::sleep(after * 3).await;
        assert!(!TRIMMER.load(Ordering::Acquire));
        body_read(10);
        assert!(
            !TRIMMER.load(Ordering::Acquire),
            "a small body needs no trimming"
        );
    }
}
