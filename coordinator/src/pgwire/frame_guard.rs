//! Frame validation below pgwire's decoder. pgwire 0.42's decoders trust the length field and
//! some panic on short bodies; this reader tracks message boundaries on the raw byte stream and
//! fails the read with `InvalidData` when a length is out of bounds, before any decoder sees it.
//! The connection loop turns that into SQLSTATE 08P01 and closes only this connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Startup-phase packets (SSLRequest, StartupMessage, CancelRequest) are at most this long,
/// as in PostgreSQL (`MAX_STARTUP_PACKET_LENGTH`).
const MAX_STARTUP_PACKET: u32 = 10_000;
const SSL_REQUEST_CODE: u32 = 80_877_103;
const GSS_REQUEST_CODE: u32 = 80_877_104;

#[derive(Debug)]
enum Phase {
    /// Untyped packets: length then body. Stays here through SSL/GSS negotiation.
    Startup,
    /// Typed messages: one type byte, then length, then body.
    Normal,
}

/// Where in the byte stream the guard is.
#[derive(Debug)]
struct Tracker {
    phase: Phase,
    header: Vec<u8>,
    remaining_body: u64,
    max_message: u32,
}

impl Tracker {
    fn header_len(&self) -> usize {
        match self.phase {
            Phase::Startup => 8,
            Phase::Normal => 5,
        }
    }

    fn observe(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.remaining_body > 0 {
                let take = (self.remaining_body.min(bytes.len() as u64)) as usize;
                self.remaining_body -= take as u64;
                bytes = &bytes[take..];
                continue;
            }
            let need = self.header_len() - self.header.len();
            let take = need.min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            self.check_length_early()?;
            if self.header.len() == self.header_len() {
                self.finish_header()?;
            }
        }
        Ok(())
    }

    /// A startup packet's length is known after four bytes; reject a bad one at once rather
    /// than wait for bytes a broken client may never send.
    fn check_length_early(&self) -> io::Result<()> {
        if matches!(self.phase, Phase::Startup) && self.header.len() >= 4 {
            let length = u32::from_be_bytes([
                self.header[0],
                self.header[1],
                self.header[2],
                self.header[3],
            ]);
            if !(8..=MAX_STARTUP_PACKET).contains(&length) {
                return Err(invalid(format!(
                    "invalid length of startup packet: {length}"
                )));
            }
        }
        Ok(())
    }

    fn finish_header(&mut self) -> io::Result<()> {
        let word = |at: usize| {
            u32::from_be_bytes([
                self.header[at],
                self.header[at + 1],
                self.header[at + 2],
                self.header[at + 3],
            ])
        };
        match self.phase {
            Phase::Startup => {
                let length = word(0);
                let code = word(4);
                if !(8..=MAX_STARTUP_PACKET).contains(&length) {
                    return Err(invalid(format!(
                        "invalid length of startup packet: {length}"
                    )));
                }
                let negotiation = code == SSL_REQUEST_CODE || code == GSS_REQUEST_CODE;
                // pgwire consumes exactly 8 bytes for these; any other length would put us and
                // the decoder at different places in the stream.
                if negotiation && length != 8 {
                    return Err(invalid(format!(
                        "invalid length of encryption request packet: {length}"
                    )));
                }
                self.remaining_body = u64::from(length - 8);
                if !negotiation {
                    self.phase = Phase::Normal;
                }
            }
            Phase::Normal => {
                let length = word(1);
                if length < 4 {
                    return Err(invalid(format!("invalid message length {length}")));
                }
                if length > self.max_message {
                    return Err(invalid(format!(
                        "message of {length} bytes exceeds the limit of {} bytes",
                        self.max_message
                    )));
                }
                self.remaining_body = u64::from(length - 4);
            }
        }
        self.header.clear();
        Ok(())
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A TCP stream whose reads are checked frame by frame.
#[derive(Debug)]
pub(crate) struct GuardedStream {
    inner: TcpStream,
    tracker: Tracker,
    failed: bool,
}

impl GuardedStream {
    pub(crate) fn new(inner: TcpStream, max_message: usize) -> Self {
        Self {
            inner,
            tracker: Tracker {
                phase: Phase::Startup,
                header: Vec::with_capacity(8),
                remaining_body: 0,
                max_message: u32::try_from(max_message).unwrap_or(u32::MAX),
            },
            failed: false,
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(Err(invalid(
                "connection closed after a malformed message".to_owned(),
            )));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                if let Err(e) = this.tracker.observe(fresh) {
                    this.failed = true;
                    // Hide the bytes of the bad frame from the decoder.
                    buf.set_filled(before);
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> Tracker {
        Tracker {
            phase: Phase::Startup,
            header: Vec::new(),
            remaining_body: 0,
            max_message: 1024,
        }
    }

    #[test]
    fn accepts_ssl_request_then_startup_then_messages_split_anywhere() {
        let mut t = tracker();
        let mut stream = Vec::new();
        stream.extend_from_slice(&8u32.to_be_bytes());
        stream.extend_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
        stream.extend_from_slice(&12u32.to_be_bytes());
        stream.extend_from_slice(&196_608u32.to_be_bytes());
        stream.extend_from_slice(b"u\0x\0");
        stream.push(b'Q');
        stream.extend_from_slice(&13u32.to_be_bytes());
        stream.extend_from_slice(b"SELECT 1\0");
        for chunk in stream.chunks(3) {
            t.observe(chunk).expect("valid stream");
        }
        assert!(matches!(t.phase, Phase::Normal));
    }

    #[test]
    fn rejects_zero_length_describe_and_oversized_messages() {
        let mut t = tracker();
        t.phase = Phase::Normal;
        assert!(t.observe(b"D\0\0\0\0").is_err());
        let mut t = tracker();
        t.phase = Phase::Normal;
        let mut big = vec![b'Q'];
        big.extend_from_slice(&2_000_000_000u32.to_be_bytes());
        assert!(t.observe(&big).is_err());
        let mut t = tracker();
        assert!(t.observe(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).is_err());
        let mut t = tracker();
        assert!(
            t.observe(&[0, 0, 0, 2]).is_err(),
            "a short startup length fails before more bytes"
        );
    }
}
