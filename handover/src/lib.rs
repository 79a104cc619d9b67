//! The hand-over protocol between the Node.js shim (`shim-node`) and the runtime
//! (`functions-framework`): the one thing the two share.
//!
//! Right before `execve(2)` the shim sets three environment variables; the runtime reads and
//! removes them before `main`:
//!
//! | variable | value |
//! | --- | --- |
//! | [`PID`] | the PID the fds are meant for (`execve` keeps the PID, so a value inherited by a child is recognisably stale) |
//! | [`LISTENERS`] | comma-separated numbers of listening TCP sockets |
//! | [`CONNECTIONS`] | comma-separated numbers of accepted connections to serve |
//!
//! ```
//! use functions_framework_handover as handover;
//!
//! let value = handover::encode_fds(&[3, 4]);
//! assert_eq!(value, "3,4");
//! assert_eq!(handover::parse_fds(&value), vec![3, 4]);
//! ```

/// The variable naming the PID the fds are meant for.
pub const PID: &str = "FUNCTIONS_FRAMEWORK_HANDOVER_PID";
/// The variable listing listening sockets.
pub const LISTENERS: &str = "FUNCTIONS_FRAMEWORK_HANDOVER_LISTENERS";
/// The variable listing accepted connections.
pub const CONNECTIONS: &str = "FUNCTIONS_FRAMEWORK_HANDOVER_CONNECTIONS";
/// Every variable of the protocol: the shim replaces stale ones, the runtime removes them.
pub const ALL: [&str; 3] = [PID, LISTENERS, CONNECTIONS];

/// fd numbers as the shim writes them: `3,4,7`.
pub fn encode_fds(fds: &[i32]) -> String {
    fds.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// fd numbers as the runtime reads them: anything that is not a non-negative number is
/// skipped, so a damaged value adopts fewer fds rather than wrong ones.
pub fn parse_fds(raw: &str) -> Vec<i32> {
    raw.split(',')
        .filter_map(|part| part.trim().parse::<i32>().ok())
        .filter(|&fd| fd >= 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_shim_writes_the_runtime_reads() {
        for fds in [&[][..], &[3], &[3, 4, 1023]] {
            assert_eq!(parse_fds(&encode_fds(fds)), fds);
        }
    }

    #[test]
    fn damaged_values_adopt_nothing_wrong() {
        assert_eq!(parse_fds("3, 4,x,,-1,5"), vec![3, 4, 5]);
        assert!(parse_fds("").is_empty());
    }

    #[test]
    fn the_names_are_distinct_and_namespaced() {
        for (i, name) in ALL.iter().enumerate() {
            assert!(name.starts_with("FUNCTIONS_FRAMEWORK_HANDOVER_"), "{name}");
            assert!(!ALL[i + 1..].contains(name), "{name}");
        }
    }
}
