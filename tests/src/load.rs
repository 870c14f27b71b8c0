//! A small closed-loop HTTP load generator for the benchmarks: N keep-alive
//! connections on loopback, each sending the next request as soon as the
//! previous answer is read, for a fixed time.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub struct LoadReport {
    pub requests: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl LoadReport {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency below which `fraction` of the requests completed.
    pub fn percentile(&self, fraction: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 * fraction).ceil() as usize)
            .clamp(1, self.latencies.len());
        self.latencies[index - 1]
    }
}

/// Loads `GET http://<address><path>` (with `headers`) on `connections`
/// connections for `duration`; every answer must have `expected_status`.
pub async fn run(
    address: &str,
    path: &str,
    headers: &[(String, String)],
    connections: usize,
    duration: Duration,
    expected_status: u16,
) -> anyhow::Result<LoadReport> {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let address = address.to_string();
        let path = path.to_string();
        let headers = headers.to_vec();
        tasks.push(tokio::spawn(async move {
            one_connection(&address, &path, &headers, deadline, expected_status).await
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.context("load task")??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(LoadReport {
        requests: latencies.len(),
        elapsed,
        latencies,
    })
}

async fn one_connection(
    address: &str,
    path: &str,
    headers: &[(String, String)],
    deadline: Instant,
    expected_status: u16,
) -> anyhow::Result<Vec<Duration>> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let mut request = hyper::Request::get(path).header("host", address);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request.body(Empty::<Bytes>::new())?;
        let started = Instant::now();
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        latencies.push(started.elapsed());
        if status != expected_status {
            bail!("GET {path} answered {status}, expected {expected_status}");
        }
    }
    Ok(latencies)
}
