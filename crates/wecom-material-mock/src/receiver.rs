//! [`CallbackReceiver`]: an app's callback endpoint on 127.0.0.1 for tests and demos.
//!
//! Every request goes through the core's
//! [`CallbackHandler`](wecom_material_core::callback::CallbackHandler); its reply (or its
//! error's status) is answered, a verified event is handed to the `on_event` function, and
//! every request is recorded.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use wecom_material_core::callback::{
    CallbackConfig, CallbackError, CallbackEvent, CallbackHandler,
};

use crate::config::CallbackTarget;

/// The path the receiver is reached at (any path is answered the same).
const PATH: &str = "/callback";

/// The most of a request body read before answering; past it the connection is closed.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// One request a [`CallbackReceiver`] answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedCallback {
    /// The request method (GET: URL check, POST: event delivery).
    pub method: Method,
    /// The request target's path and query, as received.
    pub path_and_query: String,
    /// The status answered.
    pub status: StatusCode,
    /// The verified event of a delivery (`None` for a URL check or a refused request).
    pub event: Option<CallbackEvent>,
    /// Why the handler refused the request (`None` when it was answered 200).
    pub error: Option<CallbackError>,
}

type OnEvent = dyn Fn(&CallbackEvent) + Send + Sync;

struct Shared {
    handler: CallbackHandler,
    on_event: Box<OnEvent>,
    received: Mutex<Vec<ReceivedCallback>>,
    arrived: Condvar,
}

impl Shared {
    fn received(&self) -> MutexGuard<'_, Vec<ReceivedCallback>> {
        // Plain data: keep using it after a panic elsewhere (say, in `on_event`).
        self.received.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An app's callback endpoint on `127.0.0.1:0`, for tests and demos: a hyper server on its
/// own thread and runtime (like [`MockServer`](crate::MockServer)), shut down on drop.
///
/// Every request is passed to the core's
/// [`CallbackHandler::handle`](wecom_material_core::callback::CallbackHandler::handle) and
/// answered with its reply (status and body), or with the error's
/// [`status`](CallbackError::status) and an empty body; `on_event` is called with each
/// verified event (on the receiver's thread: it must not block for long); every request is
/// recorded ([`CallbackReceiver::received`]). Point the emulator at it with
/// [`CallbackReceiver::target`].
///
/// `Debug` shows the URL and the count of requests, never the token or the key.
///
/// ```
/// use std::sync::mpsc;
/// use wecom_material_mock::{CallbackReceiver, MockConfig, MockServer};
///
/// let (tx, rx) = mpsc::channel();
/// let tx = std::sync::Mutex::new(tx);
/// let receiver = CallbackReceiver::start(
///     "QDG6eK",
///     "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
///     "ww-mock-corp",
///     move |event| {
///         let _ = tx.lock().unwrap().send(event.clone());
///     },
/// )
/// .unwrap();
/// assert!(receiver.url().starts_with("http://127.0.0.1:"));
/// let mock = MockServer::start(MockConfig {
///     callback: Some(receiver.target()),
///     ..MockConfig::default()
/// });
/// // ... an `upload_by_url` job on `mock` ends: its event arrives, verified, in `rx`.
/// # drop((mock, rx));
/// ```
pub struct CallbackReceiver {
    shared: Arc<Shared>,
    addr: SocketAddr,
    token: String,
    encoding_aes_key: String,
    receive_id: String,
    shutdown: Arc<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for CallbackReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackReceiver")
            .field("url", &self.url())
            .field("receive_id", &self.receive_id)
            .field("received", &self.shared.received().len())
            .finish_non_exhaustive()
    }
}

impl CallbackReceiver {
    /// Starts a receiver for the app with this callback `Token`, 43-character
    /// `EncodingAESKey` and receive id (the corp id of a self-built app).
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] if the key is not a valid `EncodingAESKey`
    /// (the message never contains the key), or if it cannot bind a loopback port or start
    /// its runtime.
    pub fn start(
        token: impl Into<String>,
        encoding_aes_key: impl Into<String>,
        receive_id: impl Into<String>,
        on_event: impl Fn(&CallbackEvent) + Send + Sync + 'static,
    ) -> io::Result<CallbackReceiver> {
        let (token, encoding_aes_key, receive_id) =
            (token.into(), encoding_aes_key.into(), receive_id.into());
        let config = CallbackConfig::new(token.clone(), &encoding_aes_key, receive_id.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let shared = Arc::new(Shared {
            handler: CallbackHandler::new(config),
            on_event: Box::new(on_event),
            received: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
        });
        let (shutdown, stop) = watch::channel(false);
        let (tx, rx) = std::sync::mpsc::channel::<io::Result<SocketAddr>>();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wecom-material-callback-receiver".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = tx.send(listener.local_addr());
                    accept_loop(listener, serving, stop).await;
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        let addr = rx
            .recv()
            .map_err(|_| io::Error::other("callback receiver thread ended before binding"))??;
        Ok(CallbackReceiver {
            shared,
            addr,
            token,
            encoding_aes_key,
            receive_id,
            shutdown: Arc::new(shutdown),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/callback`.
    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// The [`CallbackTarget`] for [`MockConfig::callback`](crate::MockConfig::callback) that
    /// delivers to this receiver with its token, key and receive id (WeCom's delivery rules:
    /// 5 s per attempt, 3 retries; change the fields to taste).
    pub fn target(&self) -> CallbackTarget {
        CallbackTarget::new(
            self.url(),
            self.token.clone(),
            self.encoding_aes_key.clone(),
            self.receive_id.clone(),
        )
    }

    /// Every request answered so far, in order.
    pub fn received(&self) -> Vec<ReceivedCallback> {
        self.shared.received().clone()
    }

    /// The verified events received so far, in order.
    pub fn events(&self) -> Vec<CallbackEvent> {
        self.shared
            .received()
            .iter()
            .filter_map(|r| r.event.clone())
            .collect()
    }

    /// Blocks until at least `count` requests were answered or `timeout` (real time) passes;
    /// the requests so far.
    pub fn wait_for_received(&self, count: usize, timeout: Duration) -> Vec<ReceivedCallback> {
        let deadline = Instant::now() + timeout;
        let mut received = self.shared.received();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if received.len() >= count || left.is_zero() {
                return received.clone();
            }
            received = self
                .shared
                .arrived
                .wait_timeout(received, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for CallbackReceiver {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let mut stopping = stop.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let Ok((stream, _)) = accepted else {
            // A reset before accept, out of descriptors: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let mut conn_stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(shared.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = conn_stop.wait_for(|stop| *stop) => {}
            }
        });
    }
}

async fn answer(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, mut body) = req.into_parts();
    // Keep at most one byte past the handler's limit (the handler then refuses it: 413) and
    // read the rest away, up to `DRAIN_LIMIT`, so the client gets the answer, not a reset.
    let limit = shared.handler.max_body();
    let mut bytes = Vec::new();
    let mut seen = 0u64;
    let mut complete = true;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            seen += data.len() as u64;
            let room = (limit + 1).saturating_sub(bytes.len());
            bytes.extend_from_slice(&data[..data.len().min(room)]);
            if seen > DRAIN_LIMIT {
                complete = false;
                break;
            }
        }
    }
    let query = parts.uri.query().unwrap_or("");
    let result = shared.handler.handle(&parts.method, query, &bytes);
    let (mut response, event, error) = match result {
        Ok(reply) => (reply.to_response().map(Full::new), reply.event, None),
        Err(error) => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = error.status();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            (response, None, Some(error))
        }
    };
    if !complete {
        // The rest of the body was not read: do not reuse the connection.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(event) = &event {
        (shared.on_event)(event);
    }
    shared.received().push(ReceivedCallback {
        method: parts.method,
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(String::new, |p| p.as_str().to_owned()),
        status: response.status(),
        event,
        error,
    });
    shared.arrived.notify_all();
    Ok(response)
}
