//! [`VtsStream`]: a [`VtsConnection`] over a tokio byte stream, as
//! `AsyncRead + AsyncWrite` (poll-based, no extra task).
//!
//! [`VtsStream::connect`] / [`VtsStream::accept`] run the handshake with a
//! timeout (Python peers may hang instead of closing, `docs/protocol/vts.md` §7). Handshake
//! input is parsed on the task; the one RSA private-key operation (server:
//! M5 header; client-key client: M6), which takes milliseconds, is handed
//! out by the connection ([`super::private_op`]) and runs on the
//! transport's bounded [`RsaPool`] ([`handshake_on`](VtsStream::handshake_on)),
//! or on tokio's blocking pool for the pool-less `connect`/`accept`. After the
//! handshake, writes are sealed into records immediately and sent on
//! `poll_write`/`poll_flush` (64 KiB at a time, the worker given back after
//! each 256 KiB sealed); reads take as much ciphertext as the caller has
//! room for and open the records where they lie, so that the copy into
//! the caller's buffer is the only one the stream makes; `poll_shutdown`
//! sends the TCP FIN (VTS has no close-notify, §4).

use std::io;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::config::{PeerCredentials, VtsConfig};
use super::connection::VtsConnection;
use super::error::VtsError;
use super::keys::RsaKeyPair;
use super::private_op::PrivateOps;
use super::rsa_pool::RsaPool;

// What a link's VTS stream holds, beyond what its driver charges to the
// memory budgets: at most `MAX_PENDING_OUTPUT` + `MAX_WRITE` (plus the
// records' overhead) of ciphertext to send, and at most `MAX_READ` read
// ahead plus one record (65,536 bytes and its frame) received. Beyond
// `READ_CHUNK`, read ahead is never more than the driver's read buffer has
// room for, which the driver charged (SECURITY.md, resource limits).

/// Stop accepting plaintext while this much ciphertext is unsent.
const MAX_PENDING_OUTPUT: usize = 64 * 1024;
/// Smallest read (at a record boundary it goes to the stack, see below).
const READ_CHUNK: usize = 16 * 1024;
/// Largest plaintext taken by one `poll_write`: each piece is sent as soon
/// as it is sealed, so a peer on another CPU (or host) starts opening a
/// large write while the rest is sealed (256 KiB pieces made a 1 MiB VTS
/// echo across two processes on two CPUs 5–15 % slower).
const MAX_WRITE: usize = 64 * 1024;
/// Plaintext sealed before `poll_write` gives the worker back once (see
/// there).
const YIELD_AFTER: usize = 256 * 1024;
/// Largest read: in the middle of a record or a batch of them, as much as
/// the caller has room for up to this (16 KiB reads were 75 `recvfrom`s
/// per MiB, and most of the kernel's time in a 1 MiB VTS echo).
const MAX_READ: usize = 256 * 1024;
/// Bytes read ahead while a private-key job waits (to notice a peer that
/// closed); a real peer sends nothing then (`docs/protocol/vts.md` §3.7).
const MAX_READ_WHILE_WAITING: usize = 16 * 1024;
/// Default [`VtsConfig::handshake_timeout`]: 30 s, as Versile Python
/// allows; a server's whole-handshake deadline (`StackConfig`) is shorter.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

fn to_io(e: VtsError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// An established VTS connection over `IO`.
pub struct VtsStream<IO> {
    io: IO,
    conn: VtsConnection,
    rbuf: BytesMut,
    eof: bool,
    /// Plaintext sealed since `poll_write` last returned `Pending`.
    sealed_since_yield: usize,
}

impl<IO> VtsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Run the client handshake on `io`; `key` selects client-key mode.
    pub async fn connect(
        io: IO,
        config: Arc<VtsConfig>,
        key: Option<RsaKeyPair>,
    ) -> Result<Self, VtsError> {
        let conn = VtsConnection::client(config, key);
        Self::handshake(io, conn).await
    }

    /// Run the server handshake on `io` with our key pair.
    pub async fn accept(io: IO, config: Arc<VtsConfig>, key: RsaKeyPair) -> Result<Self, VtsError> {
        let conn = VtsConnection::server(config, key);
        Self::handshake(io, conn).await
    }

    /// Drive any prepared connection through its handshake, with its RSA
    /// private-key operation on tokio's blocking pool (unbounded: servers
    /// facing the network use [`handshake_on`](Self::handshake_on)).
    pub async fn handshake(io: IO, conn: VtsConnection) -> Result<Self, VtsError> {
        Self::handshake_on(io, conn, None, None).await
    }

    /// Drive a prepared connection through its handshake, with its RSA
    /// private-key operation on `pool` (queued as `peer`'s; refused with
    /// [`VtsError::RsaBusy`] when the pool is full).
    pub async fn handshake_on(
        io: IO,
        conn: VtsConnection,
        pool: Option<RsaPool>,
        peer: Option<IpAddr>,
    ) -> Result<Self, VtsError> {
        let limit = conn.config().handshake_timeout;
        let run = Self::handshake_inner(io, conn, pool, peer);
        tokio::time::timeout(limit, run)
            .await
            .map_err(|_| VtsError::NotReady("handshake timed out"))?
    }

    async fn handshake_inner(
        mut io: IO,
        mut conn: VtsConnection,
        pool: Option<RsaPool>,
        peer: Option<IpAddr>,
    ) -> Result<Self, VtsError> {
        let io_err = |e: io::Error| VtsError::Key(format!("I/O during handshake: {e}"));
        let mut rbuf = BytesMut::with_capacity(4096);
        conn.set_private_ops(PrivateOps::Offload);
        loop {
            let out = conn.pending_output().to_vec();
            if !out.is_empty() {
                io.write_all(&out).await.map_err(io_err)?;
                io.flush().await.map_err(io_err)?;
                conn.consume_output(out.len());
            }
            if !conn.is_handshaking() {
                break;
            }
            if let Some(job) = conn.take_private_op() {
                let result = match &pool {
                    Some(pool) => {
                        let run = pool.run(peer, job);
                        tokio::pin!(run);
                        // A peer that is gone gets no RSA work: dropping
                        // `run` withdraws a job still in the queue.
                        loop {
                            tokio::select! {
                                r = &mut run => break r?,
                                n = io.read_buf(&mut rbuf), if rbuf.len() < MAX_READ_WHILE_WAITING => {
                                    if n.map_err(io_err)? == 0 {
                                        return Err(VtsError::BadHandshake("EOF during handshake"));
                                    }
                                }
                            }
                        }
                    }
                    None => tokio::task::spawn_blocking(move || job.run())
                        .await
                        .map_err(|_| VtsError::Failed)?,
                };
                conn.complete_private_op(result);
                // Continue the handshake (and open records that came with it).
                conn.receive(&mut rbuf)?;
                continue;
            }
            if io.read_buf(&mut rbuf).await.map_err(io_err)? == 0 {
                return Err(VtsError::BadHandshake("EOF during handshake"));
            }
            conn.receive(&mut rbuf)?;
        }
        Ok(VtsStream {
            io,
            conn,
            rbuf,
            eof: false,
            sealed_since_yield: 0,
        })
    }
}

impl<IO> VtsStream<IO> {
    /// What the handshake learned about the peer.
    pub fn peer(&self) -> Option<&PeerCredentials> {
        self.conn.peer()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncWrite + Unpin> VtsStream<IO> {
    /// Write pending ciphertext until done or the stream would block.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.conn.pending_output().is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, self.conn.pending_output()))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.conn.consume_output(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for VtsStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.conn.plaintext_available() > 0 {
                loop {
                    let chunk = this.conn.take_plaintext(buf.remaining());
                    if chunk.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    buf.put_slice(&chunk);
                }
            }
            if this.conn.is_failed() {
                return Poll::Ready(Err(to_io(VtsError::Failed)));
            }
            if this.eof {
                // A partial record at EOF is discarded (§4).
                return Poll::Ready(Ok(()));
            }
            // Records held by §3.7 are released by incoming records; send
            // them without waiting for the next write.
            if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
            let want = buf.remaining().clamp(READ_CHUNK, MAX_READ);
            let n = if this.rbuf.is_empty() && want == READ_CHUNK {
                // Between records, with a caller that expects little (an
                // idle link): no buffer is held. Read into the stack and
                // keep only a partial record (issue #8).
                this.rbuf = BytesMut::new();
                let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
                let mut read = ReadBuf::uninit(&mut chunk);
                ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
                this.rbuf.extend_from_slice(read.filled());
                read.filled().len()
            } else {
                // Records are opened where they lie in `rbuf`; once the
                // caller has copied them out, `reserve` takes the same
                // allocation back (moving a partial record to its start),
                // as long as the partial record and the read fit in it:
                // a new allocation per read faulted its pages in again.
                let room = want.saturating_sub(this.rbuf.len()).max(READ_CHUNK);
                this.rbuf.reserve(room);
                let mut room = (&mut this.rbuf).limit(room);
                ready!(tokio_util::io::poll_read_buf(
                    Pin::new(&mut this.io),
                    cx,
                    &mut room
                ))?
            };
            if n == 0 {
                this.eof = true;
                continue;
            }
            this.conn.receive(&mut this.rbuf).map_err(to_io)?;
            if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for VtsStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.conn.pending_output().len() >= MAX_PENDING_OUTPUT
            && this.poll_drain(cx)?.is_pending()
        {
            this.sealed_since_yield = 0;
            return Poll::Pending;
        }
        if this.sealed_since_yield >= YIELD_AFTER {
            // Sealing is the costliest work a task does here (about 0.45 ms
            // per 256 KiB with AES-256-CBC and SHA-1): give the worker back
            // between pieces of a large write, so that other tasks (the
            // peer's end in the same runtime, other links) run in between,
            // on another worker if one is free, instead of after the whole
            // write (a 1 MiB VTS echo in one runtime on two CPUs: the two
            // ends' cipher work overlaps, `docs/performance.md`, "Eighth
            // round").
            this.sealed_since_yield = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = buf.len().min(MAX_WRITE);
        this.sealed_since_yield += n;
        this.conn.write_plaintext(&buf[..n]).map_err(to_io)?;
        // Opportunistic send; the rest goes out on flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
