//! The cluster secret: a shared token every control-plane call carries (gRPC metadata
//! [`CLUSTER_SECRET_METADATA`]), so only processes that know it can join the cluster and
//! receive the object-store credentials the coordinator hands to executors. It travels in the
//! environment (`BASIN_CLUSTER_SECRET`) or a config file, never on a command line, and is never
//! printed.

use std::fmt;

/// gRPC metadata key carrying the cluster secret.
pub const CLUSTER_SECRET_METADATA: &str = "x-basin-cluster-secret";

/// A secret string whose `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret(String);

impl ClusterSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in time independent of where the strings differ.
    pub fn matches(&self, offered: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), offered.as_bytes());
        let mut diff = a.len() ^ b.len();
        for (i, byte) in a.iter().enumerate() {
            diff |= usize::from(byte ^ b.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_same_secret_and_never_prints_it() {
        let secret = ClusterSecret::new("s3cr3t");
        assert!(secret.matches("s3cr3t"));
        assert!(!secret.matches("s3cr3"));
        assert!(!secret.matches("s3cr3t!"));
        assert!(!secret.matches(""));
        assert!(!format!("{secret:?}").contains("s3cr3t"));
    }
}
