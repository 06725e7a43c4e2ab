//! The ceiling of the HTTP stack: a minimal axum server answering every GET
//! with the bytes of a file (the body latchkey answers for the same request)
//! as JSON. `ceiling ADDR FILE`.

use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::routing::get;

/// The allocator latchkey runs with: the ceiling is the same stack.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: ceiling ADDR FILE"))?
        .parse()?;
    let body: &'static [u8] = Box::leak(
        std::fs::read(
            args.next()
                .ok_or_else(|| anyhow::anyhow!("usage: ceiling ADDR FILE"))?,
        )?
        .into_boxed_slice(),
    );
    let app = Router::new().fallback(get(move || async move {
        ([(header::CONTENT_TYPE, "application/json")], body)
    }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
