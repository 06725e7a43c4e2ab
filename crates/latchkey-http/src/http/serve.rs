//! The accept loop: HTTP/1 connections with time limits on every phase, a
//! cap on open connections, backoff when `accept` fails, and a graceful stop
//! with a deadline.
//!
//! Each connection has a phase, and a watchdog closes it when the phase has
//! lasted too long:
//! - idle (between requests, or before the first): `idle_timeout`;
//! - reading a request's headers (from its first byte): `header_timeout`;
//! - reading a request's body (from the end of its headers): `body_timeout`;
//! - handling and answering: no limit here (the handlers bound their own
//!   waits: database acquire timeouts, provider timeouts).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Limits of the HTTP edge (`latchkey serve` flags).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// From a request's first byte to the end of its headers.
    pub header_timeout: Duration,
    /// From the end of a request's headers to the end of its body.
    pub body_timeout: Duration,
    /// A connection waiting for a request (keep-alive, or a new connection
    /// that sends nothing).
    pub idle_timeout: Duration,
    /// Connections open at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long a graceful stop waits for requests in flight.
    pub shutdown_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Where a connection is, and since when.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Idle(Instant),
    Headers(Instant),
    Body(Instant),
    Handling,
}

#[derive(Debug)]
struct Watch {
    phase: Mutex<Phase>,
    opts: ServeOptions,
}

impl Watch {
    fn get(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, p: Phase) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    /// Bytes arrived: a new request starts if the connection was idle.
    fn bytes_read(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Headers(Instant::now());
        }
    }

    /// When the current phase runs out, if it does.
    fn deadline(&self) -> Option<Instant> {
        match self.get() {
            Phase::Idle(t) => Some(t + self.opts.idle_timeout),
            Phase::Headers(t) => Some(t + self.opts.header_timeout),
            Phase::Body(t) => Some(t + self.opts.body_timeout),
            Phase::Handling => None,
        }
    }

    /// Resolves when the connection has overstayed its phase.
    async fn expired(&self) {
        let tick = [
            self.opts.header_timeout,
            self.opts.body_timeout,
            self.opts.idle_timeout,
        ]
        .into_iter()
        .min()
        .unwrap_or_default()
        .div_f32(4.0)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            if self.deadline().is_some_and(|d| d <= Instant::now()) {
                return;
            }
            tokio::time::sleep(tick).await;
        }
    }
}

/// The socket, telling the watch when bytes arrive.
struct Watched {
    io: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.watch.bytes_read();
        }
        res
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// A request body that moves its connection on to handling once read.
struct TrackedBody {
    inner: Incoming,
    watch: Arc<Watch>,
}

impl hyper::body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let res = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(res, Poll::Ready(None | Some(Err(_)))) || self.inner.is_end_stream() {
            self.watch.set(Phase::Handling);
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that puts its connection back to idle once sent (or
/// dropped).
struct IdleWhenDone {
    inner: Body,
    watch: Arc<Watch>,
}

impl Drop for IdleWhenDone {
    fn drop(&mut self) {
        self.watch.set(Phase::Idle(Instant::now()));
    }
}

impl hyper::body::Body for IdleWhenDone {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether an `accept` error is about the listener or the process (out of
/// file descriptors or memory: wait before trying again) rather than about
/// the one connection that failed (try the next at once).
pub fn accept_error_needs_backoff(e: &io::Error) -> bool {
    !matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Serves `app` until `shutdown` resolves, then stops accepting, lets the
/// requests in flight finish for at most `shutdown_timeout`, and returns;
/// `stop_now` resolving ends the wait at once.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
    stop_now: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let (stopping_tx, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut backoff = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        // A slot first, then `accept`: beyond the cap, clients wait in the
        // kernel's backlog and no descriptor is spent on them.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (socket, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::ZERO;
                a
            }
            Err(e) if accept_error_needs_backoff(&e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => continue,
                }
            }
            Err(_) => continue,
        };
        let _ = socket.set_nodelay(true);
        let app = app.clone();
        let opts = opts.clone();
        let stopping = stopping.clone();
        connections.spawn(async move {
            serve_connection(socket, peer, app, opts, stopping).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    let in_flight = connections.len();
    if in_flight > 0 {
        tracing::info!(
            connections = in_flight,
            deadline_secs = opts.shutdown_timeout.as_secs(),
            "waiting for requests in flight"
        );
    }
    let drained = async { while connections.join_next().await.is_some() {} };
    tokio::select! {
        () = drained => {}
        () = tokio::time::sleep(opts.shutdown_timeout) => {
            tracing::warn!(connections = connections.len(), "stop deadline reached: closing the connections left");
        }
        () = stop_now => {
            tracing::warn!(connections = connections.len(), "second signal: stopping now");
        }
    }
    connections.shutdown().await;
    Ok(())
}

async fn serve_connection(
    socket: TcpStream,
    peer: SocketAddr,
    app: Router,
    opts: ServeOptions,
    mut stopping: watch::Receiver<bool>,
) {
    let watch = Arc::new(Watch {
        phase: Mutex::new(Phase::Idle(Instant::now())),
        opts,
    });
    let io = hyper_util::rt::TokioIo::new(Watched {
        io: socket,
        watch: watch.clone(),
    });
    let w = watch.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (app, watch) = (app.clone(), w.clone());
        async move {
            watch.set(if hyper::body::Body::is_end_stream(req.body()) {
                Phase::Handling
            } else {
                Phase::Body(Instant::now())
            });
            let mut req = req.map(|inner| {
                Body::new(TrackedBody {
                    inner,
                    watch: watch.clone(),
                })
            });
            req.extensions_mut().insert(ConnectInfo(peer));
            let res = tower::ServiceExt::oneshot(app, req).await;
            Ok::<_, Infallible>(match res {
                Ok(res) => res.map(|inner| IdleWhenDone { inner, watch }),
                Err(never) => match never {},
            })
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut graceful = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            () = watch.expired() => {
                tracing::debug!(%peer, phase = ?watch.get(), "connection timed out");
                return;
            }
            changed = stopping.changed(), if !graceful => {
                graceful = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_backs_off_when_out_of_descriptors_not_for_one_aborted_connection() {
        // EMFILE and ENFILE: the process or the system is out of descriptors.
        for errno in [24, 23] {
            assert!(accept_error_needs_backoff(&io::Error::from_raw_os_error(
                errno
            )));
        }
        assert!(!accept_error_needs_backoff(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
    }
}
