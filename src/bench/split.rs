//! Server halves on their own OS thread, for `--split`: each server runs a
//! current-thread runtime on a dedicated thread while the client runs on
//! the caller's runtime, so under `taskset -c 0,1` the two ends can sit on
//! different CPUs (the cross-CPU placement), and under `taskset -c 0` they
//! share one.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A server task running on its own thread until [`stop`](Self::stop).
pub struct ServerThread {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Bind 127.0.0.1:0 and run `serve(listener, stop)` on a new thread.
    pub fn spawn<F, Fut>(serve: F) -> io::Result<Self>
    where
        F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let join = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return; // the client's connect fails and reports it
                };
                rt.block_on(async move {
                    if let Ok(listener) = TcpListener::from_std(listener) {
                        serve(listener, stopped).await;
                    }
                });
            })?;
        Ok(ServerThread {
            addr,
            stop: Some(stop),
            join: Some(join),
        })
    }

    /// The server's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Ask the server to stop and wait for its thread.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(join) = self.join.take() {
            let _ = tokio::task::spawn_blocking(move || join.join()).await;
        }
    }
}
