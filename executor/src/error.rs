//! The executor's error type. Every error knows its [`ErrorClass`], so callers can tell a
//! configuration mistake from a coordinator that went away.

use std::net::SocketAddr;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is, for callers deciding whether to retry or report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad configuration or input from the operator.
    User,
    /// A bug in Basin.
    Internal,
    /// The network, the coordinator or the OS failed; trying again later may work.
    External,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid executor configuration: {0}")]
    Config(String),

    #[error("bind executor listen address {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "control protocol version mismatch: coordinator speaks version {coordinator}, this \
         executor speaks version {executor}; run the same Basin release on both"
    )]
    ProtocolMismatch { coordinator: u32, executor: u32 },

    #[error("coordinator refused registration: {0}")]
    Refused(String),

    /// A control-plane call failed in a way retrying cannot fix (the server does not implement
    /// the call, rejected its arguments, ...).
    #[error("control-plane call {call} failed: {status}")]
    ControlPlane {
        call: &'static str,
        status: Box<tonic::Status>,
    },

    #[error("executor gRPC server failed: {0}")]
    Serve(#[source] tonic::transport::Error),

    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Config(_) | Error::ProtocolMismatch { .. } | Error::Refused(_) => {
                ErrorClass::User
            }
            Error::Bind { .. } | Error::ControlPlane { .. } | Error::Serve(_) => {
                ErrorClass::External
            }
            Error::Internal(_) => ErrorClass::Internal,
        }
    }
}
