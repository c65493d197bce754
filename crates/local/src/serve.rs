//! The local HTTP server, with the limits a server exposed to the internet needs (axum's `serve`
//! has none): a deadline for a client's request headers, one for its request body, and a cap on
//! open connections, so slow or half-open clients cannot take the API down. Handlers themselves
//! are not cut off (an inline `POST /v1/sweeps` may take longer than any client deadline).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Limits of the local server.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// A client that has not sent its request headers by then is disconnected.
    pub header_read_timeout: Duration,
    /// A request body that has not arrived by then is a read error: the API answers 400
    /// `invalid_request` in its error JSON.
    pub body_read_timeout: Duration,
    /// Connections open at once; a connection beyond it is closed at once.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(20),
            max_connections: 1024,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.body_read_timeout,
    ));
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // hyper answers a head it cannot hold with a bodiless 431; with room above the API's own
    // header limits (`shipwatch_api::request_head`) those answer in the error JSON instead.
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(4 * shipwatch_api::request_head::MAX_HEADER_COUNT);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %err, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "too many open connections; closed");
            drop(stream);
            continue;
        };
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    graceful.shutdown().await;
}
