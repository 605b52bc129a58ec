//! Frame validation below pgwire's decoder. pgwire 0.42's decoders trust the length field, read
//! past the end of a short body (into the next message, or out of the buffer: a panic), and leave
//! unread the bytes of an over-long one (which pgwire then decodes as the next message). This
//! reader tracks message boundaries on the raw byte stream and checks each frame before any
//! decoder sees it: lengths in bounds, a known message type, and a body that parses exactly to
//! its end under the grammar of that message (so pgwire's decoder consumes exactly one frame). A
//! bad frame fails the read with `InvalidData`; the connection loop turns that into SQLSTATE
//! 08P01 and closes only this connection.
//!
//! This file needs nothing but `std` and `tokio`'s I/O traits, and the stream is generic: the
//! fuzz target `pgwire_frontend` (`fuzz/`) compiles this very file with `#[path]` and runs it over
//! in-memory input, without building the rest of the coordinator.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Startup-phase packets (SSLRequest, StartupMessage, CancelRequest) are at most this long,
/// as in PostgreSQL (`MAX_STARTUP_PACKET_LENGTH`).
const MAX_STARTUP_PACKET: u32 = 10_000;
const SSL_REQUEST_CODE: u32 = 80_877_103;
const GSS_REQUEST_CODE: u32 = 80_877_104;
const CANCEL_REQUEST_CODE: u32 = 80_877_102;
/// A CancelRequest: length, code, pid, then a secret key of 4 (protocol 3.0) to 256 bytes (3.2).
const CANCEL_LENGTHS: std::ops::RangeInclusive<u32> = 16..=12 + 256;

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
    /// What the current frame is, once its header is complete.
    frame: Frame,
    /// The current frame's body so far, when its grammar is checked (every frame but CopyData,
    /// whose body is opaque). Bounded by `max_message`.
    body: Vec<u8>,
    /// Whether a password-family message ('p') was seen: the first is a SASLInitialResponse.
    seen_password_message: bool,
}

/// The frame whose body is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// A startup packet with this code (protocol version, or a request code).
    Startup(u32),
    /// A typed message with this type byte.
    Message(u8),
}

impl Tracker {
    fn new(max_message: u32) -> Self {
        Self {
            phase: Phase::Startup,
            header: Vec::with_capacity(8),
            remaining_body: 0,
            max_message,
            frame: Frame::Startup(0),
            body: Vec::new(),
            seen_password_message: false,
        }
    }

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
                if self.frame != Frame::Message(b'd') {
                    self.body.extend_from_slice(&bytes[..take]);
                }
                self.remaining_body -= take as u64;
                bytes = &bytes[take..];
                if self.remaining_body == 0 {
                    self.finish_body()?;
                }
                continue;
            }
            let need = self.header_len() - self.header.len();
            let take = need.min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            self.check_length_early()?;
            if self.header.len() == self.header_len() {
                self.finish_header()?;
                if self.remaining_body == 0 {
                    self.finish_body()?;
                }
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
                if code == CANCEL_REQUEST_CODE && !CANCEL_LENGTHS.contains(&length) {
                    return Err(invalid(format!(
                        "invalid length of cancel request packet: {length}"
                    )));
                }
                self.frame = Frame::Startup(code);
                self.remaining_body = u64::from(length - 8);
                if !negotiation {
                    self.phase = Phase::Normal;
                }
            }
            Phase::Normal => {
                let kind = self.header[0];
                let length = word(1);
                if !FRONTEND_TYPES.contains(&kind) {
                    return Err(invalid(format!(
                        "invalid frontend message type {}",
                        kind.escape_ascii()
                    )));
                }
                if length < 4 {
                    return Err(invalid(format!("invalid message length {length}")));
                }
                if length > self.max_message {
                    return Err(invalid(format!(
                        "message of {length} bytes exceeds the limit of {} bytes",
                        self.max_message
                    )));
                }
                self.frame = Frame::Message(kind);
                self.remaining_body = u64::from(length - 4);
            }
        }
        self.header.clear();
        Ok(())
    }

    /// The whole body of the current frame has been seen: check its grammar.
    fn finish_body(&mut self) -> io::Result<()> {
        let body = std::mem::take(&mut self.body);
        let first_password = self.frame == Frame::Message(b'p') && !self.seen_password_message;
        if self.frame == Frame::Message(b'p') {
            self.seen_password_message = true;
        }
        let checked = match self.frame {
            Frame::Startup(code) => check_startup_body(code, &body),
            Frame::Message(kind) => check_message_body(kind, &body, first_password),
        };
        // Keep the allocation for the next frame unless it was a large one.
        if body.capacity() <= 64 * 1024 {
            self.body = body;
            self.body.clear();
        }
        checked.map_err(|reason| {
            let name = match self.frame {
                Frame::Startup(_) => "startup packet".to_owned(),
                Frame::Message(kind) => format!("message of type {}", kind.escape_ascii()),
            };
            invalid(format!("malformed {name}: {reason}"))
        })
    }
}

/// The message types a client may send (PostgreSQL protocol 3, "Message Formats").
const FRONTEND_TYPES: &[u8] = b"QPBCDEHSXdcfp";

/// The body of a startup packet after its length and code. SSL/GSS requests have none; a
/// CancelRequest holds a pid and a key (lengths checked with the header); a StartupMessage holds
/// `name\0value\0` pairs and a final `\0`, and nothing after it.
fn check_startup_body(code: u32, body: &[u8]) -> Result<(), &'static str> {
    if matches!(
        code,
        SSL_REQUEST_CODE | GSS_REQUEST_CODE | CANCEL_REQUEST_CODE
    ) {
        return Ok(());
    }
    let mut body = Body(body);
    loop {
        let name = body.cstring()?;
        if name.is_empty() {
            return body.end();
        }
        body.cstring()?;
    }
}

/// The grammar of each frontend message body, as pgwire 0.42 decodes it: a body that does not
/// parse to exactly its end would make the decoder read past it or leave bytes behind.
fn check_message_body(kind: u8, body: &[u8], first_password: bool) -> Result<(), &'static str> {
    let mut body = Body(body);
    match kind {
        // Query, CopyFail: one string.
        b'Q' | b'f' => {
            body.cstring()?;
        }
        // Parse: statement name, query, parameter type OIDs.
        b'P' => {
            body.cstring()?;
            body.cstring()?;
            let count = body.u16()?;
            body.take(usize::from(count) * 4)?;
        }
        // Bind: portal, statement, parameter formats, parameter values, result formats.
        b'B' => {
            body.cstring()?;
            body.cstring()?;
            let formats = body.u16()?;
            body.take(usize::from(formats) * 2)?;
            for _ in 0..body.u16()? {
                let length = body.i32()?;
                match usize::try_from(length) {
                    Ok(length) => {
                        body.take(length)?;
                    }
                    Err(_) if length == -1 => {}
                    Err(_) => return Err("negative parameter length"),
                }
            }
            let formats = body.u16()?;
            body.take(usize::from(formats) * 2)?;
        }
        // Close, Describe: 'S' or 'P', then a name.
        b'C' | b'D' => {
            body.take(1)?;
            body.cstring()?;
        }
        // Execute: portal, row limit.
        b'E' => {
            body.cstring()?;
            body.i32()?;
        }
        // Flush, Sync, Terminate, CopyDone: nothing.
        b'H' | b'S' | b'X' | b'c' => {}
        // The first password-family message is a SASLInitialResponse (the only authentication
        // Basin asks for is SCRAM): mechanism, then -1 or a length and that many bytes. Later
        // ones (SASLResponse) are opaque, and so is CopyData.
        b'p' if first_password => {
            body.cstring()?;
            let length = body.i32()?;
            if length != -1 {
                let length = usize::try_from(length).map_err(|_| "negative data length")?;
                body.take(length)?;
            }
        }
        _ => return Ok(()),
    }
    body.end()
}

/// A cursor over a message body; every read fails rather than run past the end.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], &'static str> {
        if count > self.0.len() {
            return Err("body ends early");
        }
        let (taken, rest) = self.0.split_at(count);
        self.0 = rest;
        Ok(taken)
    }

    fn cstring(&mut self) -> Result<&'a [u8], &'static str> {
        let end = self
            .0
            .iter()
            .position(|&byte| byte == 0)
            .ok_or("string without terminator")?;
        let text = self.take(end + 1)?;
        Ok(&text[..end])
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn i32(&mut self) -> Result<i32, &'static str> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn end(&self) -> Result<(), &'static str> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("bytes after the end of the message")
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A client stream (TCP in the server) whose reads are checked frame by frame.
#[derive(Debug)]
pub(crate) struct GuardedStream<S> {
    inner: S,
    tracker: Tracker,
    failed: bool,
}

impl<S> GuardedStream<S> {
    pub(crate) fn new(inner: S, max_message: usize) -> Self {
        Self {
            inner,
            tracker: Tracker::new(u32::try_from(max_message).unwrap_or(u32::MAX)),
            failed: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedStream<S> {
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

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
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
        Tracker::new(1024)
    }

    #[test]
    fn accepts_ssl_request_then_startup_then_messages_split_anywhere() {
        let mut t = tracker();
        let mut stream = Vec::new();
        stream.extend_from_slice(&8u32.to_be_bytes());
        stream.extend_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
        stream.extend_from_slice(&13u32.to_be_bytes());
        stream.extend_from_slice(&196_608u32.to_be_bytes());
        stream.extend_from_slice(b"u\0x\0\0");
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

    fn normal() -> Tracker {
        let mut t = tracker();
        t.phase = Phase::Normal;
        t
    }

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&(u32::try_from(body.len() + 4).expect("short")).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn checks_each_body_against_its_grammar() {
        // Found by the fuzzer: a Parse whose body ends before its type OIDs made pgwire read
        // past the buffer.
        assert!(normal().observe(&message(b'P', b"\0x\0\0\x01\0")).is_err());
        assert!(
            normal()
                .observe(&message(b'P', b"\0x\0\0\x01\0\0\0\x17"))
                .is_ok()
        );
        // Trailing bytes would be decoded as a message of their own.
        assert!(normal().observe(&message(b'S', b"Q\0\0\0\x05\0")).is_err());
        assert!(normal().observe(&message(b'Q', b"SELECT 1\0X")).is_err());
        assert!(normal().observe(&message(b'Q', b"SELECT 1")).is_err());
        assert!(normal().observe(&message(b'D', b"")).is_err());
        assert!(normal().observe(&message(b'D', b"S\0")).is_ok());
        assert!(normal().observe(&message(b'E', b"\0\0\0")).is_err());
        assert!(
            normal().observe(&message(b'Z', b"")).is_err(),
            "unknown type"
        );
        let bind = b"\0\0\0\0\0\x01\xff\xff\xff\xfe\0\0";
        assert!(normal().observe(&message(b'B', bind)).is_err(), "length -2");
        let bind = b"\0\0\0\0\0\x02\xff\xff\xff\xff\0\0\0\x01z\0\0";
        assert!(normal().observe(&message(b'B', bind)).is_ok());
        assert!(normal().observe(&message(b'd', b"any\0thing")).is_ok());
        // The first 'p' is a SASLInitialResponse; later ones are opaque.
        let mut t = normal();
        assert!(
            t.observe(&message(b'p', b"SCRAM-SHA-256\0\0\0\0\x02n,"))
                .is_ok()
        );
        assert!(t.observe(&message(b'p', b"c=biws,r=x")).is_ok());
        assert!(normal().observe(&message(b'p', b"x")).is_err());
    }

    #[test]
    fn checks_startup_packets() {
        let packet = |code: u32, body: &[u8]| {
            let mut out = (u32::try_from(body.len() + 8).expect("short"))
                .to_be_bytes()
                .to_vec();
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(body);
            out
        };
        assert!(tracker().observe(&packet(196_608, b"user\0u\0\0")).is_ok());
        assert!(tracker().observe(&packet(196_608, b"user\0u\0")).is_err());
        assert!(
            tracker()
                .observe(&packet(196_608, b"user\0u\0\0x"))
                .is_err()
        );
        let cancel = packet(CANCEL_REQUEST_CODE, &[0; 8]);
        assert!(tracker().observe(&cancel).is_ok());
        assert!(
            tracker()
                .observe(&packet(CANCEL_REQUEST_CODE, &[0; 4]))
                .is_err()
        );
    }
}
