//! Receives WeCom's callbacks for one app and prints the job id of every finished
//! `upload_by_url` job (SPEC §8), over hyper 1 (HTTP/1) and tokio.
//!
//! It answers the URL check (GET with `echostr`) and event deliveries (POST) with the core's
//! [`CallbackHandler`], which verifies the signature, decrypts and parses; WeCom retries a
//! delivery without a 200 within 5 s, so repeats are dropped with a [`JobDeduplicator`].
//! A real application would feed each event to its waiting calls
//! (`wecom_material::blocking::Client::job_events().notify(&event)`) or fetch the job result.
//!
//! ```text
//! WECOM_CALLBACK_TOKEN=QDG6eK \
//! WECOM_CALLBACK_AES_KEY=jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C \
//! WECOM_CORP_ID=wx5823bf96d3bd56c7 \
//!   cargo run -p wecom-material --example callback_server -- 127.0.0.1:8080
//! ```
//!
//! The listen address is the first argument, else `WECOM_CALLBACK_ADDR`, else
//! `127.0.0.1:8080`. Put it behind your HTTPS reverse proxy; it sets no timeouts of its own.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wecom_material::callback::{CallbackConfig, CallbackEvent, CallbackHandler, JobDeduplicator};

/// Shared by every connection.
struct App {
    handler: CallbackHandler,
    seen: Mutex<JobDeduplicator>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    // The token and key are never printed: `CallbackConfig`'s Debug redacts them.
    let config = CallbackConfig::new(
        env("WECOM_CALLBACK_TOKEN")?,
        &env("WECOM_CALLBACK_AES_KEY")?,
        env("WECOM_CORP_ID")?,
    )?;
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("WECOM_CALLBACK_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:8080".into())
        .parse()?;
    let app = Arc::new(App {
        handler: CallbackHandler::new(config),
        seen: Mutex::new(JobDeduplicator::default()),
    });

    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(app.clone(), request));
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {error}");
            }
        });
    }
}

/// One request: read the body (bounded), let the handler decide, report the event.
async fn answer(
    app: Arc<App>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, app.handler.max_body()).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(status_only(StatusCode::PAYLOAD_TOO_LARGE)),
    };
    let query = parts.uri.query().unwrap_or("");
    match app.handler.handle(&parts.method, query, &body) {
        Ok(reply) => {
            match &reply.event {
                Some(CallbackEvent::UploadMediaJobFinish { job_id, .. }) => {
                    let first = app
                        .seen
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .first_time(job_id);
                    if first {
                        println!("job finished: {}", job_id.as_str());
                    }
                }
                Some(other) => println!("other callback: {other:?}"),
                None => println!("URL check answered"),
            }
            Ok(reply.to_response().map(Full::new))
        }
        Err(error) => {
            eprintln!("rejected callback: {error}");
            Ok(status_only(error.status()))
        }
    }
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
