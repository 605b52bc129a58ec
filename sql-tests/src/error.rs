use std::fmt;

/// A harness failure: the cluster would not start or stop, a file could not be read, or a record
/// did not produce what the file expects. Only ever shown to a person, so it is a message with
/// its context already folded in.
#[derive(Debug)]
pub struct Error {
    message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// Wraps `source` under a context such as `start basin`.
    pub fn context(context: impl fmt::Display, source: impl fmt::Display) -> Self {
        Self::new(format!("{context}: {source}"))
    }

    /// Appends more text (for example the tail of a server log) to the message.
    #[must_use]
    pub fn with_appendix(mut self, appendix: &str) -> Self {
        if !appendix.is_empty() {
            self.message.push('\n');
            self.message.push_str(appendix);
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
