//! ID newtypes shared by both roles, so an executor ID is never confused with another string.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Identifies one executor process for its whole life. Chosen by the executor at start-up and
/// sent with every control-plane call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecutorId(String);

impl ExecutorId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ExecutorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ExecutorId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for ExecutorId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl AsRef<str> for ExecutorId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_and_serializes_as_plain_string() {
        let id = ExecutorId::new("exec-1");
        assert_eq!(id.to_string(), "exec-1");
        let json = serde_json::to_string(&id).expect("serialize id");
        assert_eq!(json, "\"exec-1\"");
        let back: ExecutorId = serde_json::from_str(&json).expect("deserialize id");
        assert_eq!(back, id);
    }
}
