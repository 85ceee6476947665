//! [`FaultIo`]: a TCP stream under a client link that misbehaves on
//! command ([`FaultCtl::set`]): reset the connection (SO_LINGER 0, then
//! close), half-close it, stop reading, write one byte at a time, or slip
//! garbage into the byte stream. The link above it is our ordinary link
//! driver, so faults hit a server in the middle of real calls.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes};
use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Sleep;

/// What the stream does now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Pass everything through.
    None,
    /// RST: SO_LINGER 0 and close; every later read or write fails.
    Reset,
    /// Shut the write side (FIN); later writes never complete, reads go on.
    HalfClose,
    /// Never read again (the peer's results pile up).
    StopReading,
    /// Write one byte, then wait this long, and so on.
    Slow(Duration),
    /// Write these bytes before the next write of the link, then pass
    /// through.
    Garbage(Bytes),
}

/// The switch of one [`FaultIo`], shared with the fault task.
#[derive(Debug)]
pub struct FaultCtl {
    state: Mutex<(Fault, Option<Waker>)>,
    /// Set when a read sees EOF or an error: the server closed (or reset)
    /// the connection, whatever our own link does about it.
    peer_closed: watch::Sender<bool>,
}

impl FaultCtl {
    pub fn new(fault: Fault) -> Arc<Self> {
        Arc::new(FaultCtl {
            state: Mutex::new((fault, None)),
            peer_closed: watch::Sender::new(false),
        })
    }

    /// Wait until the server has closed the connection (EOF or reset seen
    /// by a read).
    pub async fn peer_closed(&self) {
        let mut rx = self.peer_closed.subscribe();
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// Switch the fault and wake the link task so it takes effect now.
    pub fn set(&self, fault: Fault) {
        let waker = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.0 = fault;
            st.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The current fault, remembering who to wake on a change; garbage is
    /// handed out once.
    fn poll(&self, cx: &Context<'_>) -> Fault {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !st.1.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            st.1 = Some(cx.waker().clone());
        }
        if matches!(st.0, Fault::Garbage(_)) {
            return std::mem::replace(&mut st.0, Fault::None);
        }
        st.0.clone()
    }
}

/// A TCP stream with a fault switch.
pub struct FaultIo {
    inner: Option<TcpStream>,
    ctl: Arc<FaultCtl>,
    half_closed: bool,
    /// Garbage still to write before the link's next bytes.
    garbage: Bytes,
    /// The pause of a slow writer.
    pause: Option<Pin<Box<Sleep>>>,
}

impl FaultIo {
    pub fn new(inner: TcpStream, ctl: Arc<FaultCtl>) -> Self {
        FaultIo {
            inner: Some(inner),
            ctl,
            half_closed: false,
            garbage: Bytes::new(),
            pause: None,
        }
    }

    /// Apply the current fault; `Err` once the stream is reset.
    fn fault(&mut self, cx: &Context<'_>) -> io::Result<Fault> {
        let fault = self.ctl.poll(cx);
        match &fault {
            Fault::Reset => {
                if let Some(s) = self.inner.take() {
                    // Zero linger: close() sends RST instead of FIN.
                    let _ = SockRef::from(&s).set_linger(Some(Duration::ZERO));
                }
                return Err(io::ErrorKind::ConnectionReset.into());
            }
            Fault::HalfClose if !self.half_closed => {
                self.half_closed = true;
                if let Some(s) = &self.inner {
                    let _ = SockRef::from(s).shutdown(std::net::Shutdown::Write);
                }
            }
            Fault::Garbage(g) => self.garbage = g.clone(),
            _ => {}
        }
        if self.inner.is_none() {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        Ok(fault)
    }

    fn inner(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        match self.inner.as_mut() {
            Some(s) => Ok(Pin::new(s)),
            None => Err(io::ErrorKind::ConnectionReset.into()),
        }
    }
}

impl AsyncRead for FaultIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.fault(cx) {
            Err(e) => Poll::Ready(Err(e)),
            // The waker is registered: a later `set` wakes us.
            Ok(Fault::StopReading) => Poll::Pending,
            Ok(_) => {
                let before = buf.filled().len();
                let r = match self.inner() {
                    Ok(s) => s.poll_read(cx, buf),
                    Err(e) => Poll::Ready(Err(e)),
                };
                let eof = matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() == before;
                if eof || matches!(r, Poll::Ready(Err(_))) {
                    self.ctl.peer_closed.send_replace(true);
                }
                r
            }
        }
    }
}

impl AsyncWrite for FaultIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let fault = match self.fault(cx) {
            Err(e) => return Poll::Ready(Err(e)),
            Ok(f) => f,
        };
        if self.half_closed {
            return Poll::Pending;
        }
        while !self.garbage.is_empty() {
            let garbage = self.garbage.clone();
            let s = match self.inner() {
                Ok(s) => s,
                Err(e) => return Poll::Ready(Err(e)),
            };
            match s.poll_write(cx, &garbage) {
                Poll::Ready(Ok(n)) => self.garbage.advance(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if let Fault::Slow(gap) = fault {
            if let Some(p) = self.pause.as_mut() {
                if p.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            let n = buf.len().min(1);
            let s = match self.inner() {
                Ok(s) => s,
                Err(e) => return Poll::Ready(Err(e)),
            };
            let r = s.poll_write(cx, &buf[..n]);
            if let Poll::Ready(Ok(_)) = r {
                self.pause = Some(Box::pin(tokio::time::sleep(gap)));
            }
            return r;
        }
        match self.inner() {
            Ok(s) => s.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.inner() {
            Ok(s) => s.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.half_closed {
            return Poll::Ready(Ok(()));
        }
        match self.inner() {
            Ok(s) => s.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}
