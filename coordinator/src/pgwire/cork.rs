//! Corking of a connection's replies. pgwire sends (writes and flushes) the replies to `Parse`,
//! `Bind`, `Describe` and `Close` one by one, so a prepared statement's round trip (`Bind`,
//! `Describe`, `Execute`, `Sync`, as libpq and pgbench send it) went out as four `send`s and
//! woke the client four times. While the message loop handles those messages it corks the
//! stream: their bytes wait here and leave with the rest of the reply at `Sync` or `Flush`, in
//! one `send`. PostgreSQL also sends nothing of an extended query before `Sync` or `Flush`
//! (errors excepted: the loop uncorks before reporting one).
//!
//! This file needs nothing but `std` and `tokio`'s I/O traits: the fuzz target `pgwire_frontend`
//! compiles it with `#[path]`, as it does `frame_guard.rs` and `message_loop.rs`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Corked bytes beyond this are written through.
const MAX_CORKED: usize = 64 << 10;
/// A drained buffer with more capacity than this is released.
const KEEP_CAPACITY: usize = 8 << 10;

/// A stream whose writes can be held back until the next uncorked write or flush.
#[derive(Debug)]
pub(crate) struct Corked<S> {
    inner: S,
    /// While set, writes collect in `held` and flushes do nothing.
    cork: bool,
    /// Bytes written but not yet passed to `inner`, oldest first.
    held: Vec<u8>,
}

impl<S> Corked<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            cork: false,
            held: Vec::new(),
        }
    }

    /// Corks (`true`) or uncorks writes. Uncorking sends nothing by itself: the held bytes go
    /// out ahead of the next write or flush.
    pub(crate) fn set_cork(&mut self, cork: bool) {
        self.cork = cork;
    }
}

impl<S: AsyncWrite + Unpin> Corked<S> {
    /// Passes the held bytes to the inner stream.
    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.held.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.held) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(written)) => {
                    self.held.drain(..written);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.held.capacity() > KEEP_CAPACITY {
            // After a large corked reply, do not keep its buffer for the connection's life.
            self.held = Vec::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Corked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Corked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held.is_empty() && !this.cork {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        if this.held.len() < MAX_CORKED {
            // Behind held bytes (or corked): queue this write after them, so that held and new
            // bytes leave in one write.
            let take = data.len().min(MAX_CORKED - this.held.len());
            this.held.extend_from_slice(&data[..take]);
            if this.cork {
                return Poll::Ready(Ok(take));
            }
            return match this.poll_release(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                // Accepted either way; what is left goes out at the next write or flush.
                Poll::Ready(Ok(())) | Poll::Pending => Poll::Ready(Ok(take)),
            };
        }
        match this.poll_release(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_write(cx, data),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cork {
            return Poll::Ready(Ok(()));
        }
        match this.poll_release(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_release(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn corked_bytes_wait_for_an_uncorked_flush_and_keep_their_order() {
        let (server, mut client) = tokio::io::duplex(1 << 20);
        let mut corked = Corked::new(server);
        corked.set_cork(true);
        corked.write_all(b"ParseComplete;").await.expect("write");
        corked.flush().await.expect("flush");
        let mut byte = [0u8; 1];
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(50), client.read(&mut byte))
                .await;
        assert!(early.is_err(), "corked bytes reached the client");
        corked.set_cork(false);
        corked.write_all(b"DataRow;").await.expect("write");
        corked.flush().await.expect("flush");
        let mut got = vec![0u8; 22];
        client.read_exact(&mut got).await.expect("read");
        assert_eq!(got, b"ParseComplete;DataRow;");
    }

    #[tokio::test]
    async fn a_large_corked_reply_is_written_through_whole() {
        let (server, mut client) = tokio::io::duplex(1 << 20);
        let mut corked = Corked::new(server);
        corked.set_cork(true);
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        corked.write_all(&big).await.expect("write");
        corked.set_cork(false);
        corked.flush().await.expect("flush");
        let mut got = vec![0u8; big.len()];
        client.read_exact(&mut got).await.expect("read");
        assert_eq!(got, big);
    }
}
