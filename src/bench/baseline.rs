//! The baseline: a raw tokio TCP ping-pong over loopback with
//! `TCP_NODELAY`, sending messages of exactly the sizes an echo call puts
//! on the wire (request and response), so the only difference to the PLAIN
//! echo measurement is our stack.

use std::io;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::split::ServerThread;
use super::Phase;

/// Sequential round trips on a new connection: `warmup` untimed, then
/// `iterations` timed into `phase` (resumed for them, paused after).
pub async fn ping_pong(
    request_len: usize,
    response_len: usize,
    warmup: usize,
    iterations: usize,
    split: bool,
    phase: &mut Phase,
) -> io::Result<()> {
    let serve = move |listener: TcpListener| async move {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        let mut req = vec![0u8; request_len];
        let resp = vec![0xa5u8; response_len];
        loop {
            match s.read_exact(&mut req).await {
                Ok(_) => s.write_all(&resp).await?,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok::<_, io::Error>(()),
                Err(e) => return Err(e),
            }
        }
    };
    let (addr, server) = if split {
        let thread = ServerThread::spawn(move |l, _stop| async move {
            let _ = serve(l).await;
        })?;
        (thread.local_addr(), Server::Thread(thread))
    } else {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        (addr, Server::Task(tokio::spawn(serve(listener))))
    };

    let mut c = TcpStream::connect(addr).await?;
    c.set_nodelay(true)?;
    let req = vec![0x5au8; request_len];
    let mut resp = vec![0u8; response_len];
    for i in 0..warmup + iterations {
        if i == warmup {
            phase.resume();
        }
        let t = Instant::now();
        c.write_all(&req).await?;
        c.read_exact(&mut resp).await?;
        if i >= warmup {
            phase.sample(t.elapsed());
        }
    }
    phase.pause();
    drop(c);
    match server {
        Server::Task(t) => t.await.map_err(io::Error::other)??,
        Server::Thread(t) => t.stop().await,
    }
    Ok(())
}

enum Server {
    Task(tokio::task::JoinHandle<io::Result<()>>),
    Thread(ServerThread),
}
