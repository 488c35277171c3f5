//! Prometheus metrics through OpenTelemetry, served on their own listener.
//!
//! Names are registered without suffixes: the exporter appends `_total` to
//! counters and `_seconds` to histograms with unit `s`, which yields the
//! original dashboards' names (`sync_uploads_total`, …).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider, UpDownCounter};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder, TextEncoder};

/// Latency buckets in seconds, from sub-millisecond to a minute.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

pub struct Metrics {
    registry: prometheus::Registry,
    // Dropping the provider stops collection; it lives as long as the hub.
    _provider: SdkMeterProvider,
    pub uploads: Counter<u64>,
    pub deletes: Counter<u64>,
    pub conflicts: Counter<u64>,
    pub restores: Counter<u64>,
    requests: Counter<u64>,
    request_duration: Histogram<f64>,
    pub bytes_received: Counter<u64>,
    pub bytes_sent: Counter<u64>,
    pub websocket_clients: UpDownCounter<i64>,
    pub websocket_lagged: Counter<u64>,
    pub chunks_stored: UpDownCounter<i64>,
    pub chunk_bytes_stored: UpDownCounter<i64>,
    pub dedup_saved_bytes: Counter<u64>,
    pub commit_duration: Histogram<f64>,
    /// Garbage collection passes over the chunk store, and what they removed.
    pub gc_runs: Counter<u64>,
    pub gc_removed_chunks: Counter<u64>,
    pub gc_removed_bytes: Counter<u64>,
    /// Chunks found damaged when read (moved out of the store), chunks
    /// wanted (lost, asked of agents), and wanted chunks stored again.
    pub chunks_damaged: Counter<u64>,
    pub chunks_wanted: UpDownCounter<i64>,
    pub chunks_repaired: Counter<u64>,
}

impl Metrics {
    pub fn new() -> Result<Self, opentelemetry_sdk::error::OTelSdkError> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .scope_info_enabled(false)
            .build()?;
        let provider = SdkMeterProvider::builder()
            .with_reader(exporter)
            .with_resource(Resource::builder_empty().build())
            .build();
        let meter = provider.meter("sf-hub");
        let metrics = Self {
            uploads: counter(
                &meter,
                "sync_uploads",
                "File versions uploaded (v1 commits and legacy uploads, conflict copies included)",
            ),
            deletes: counter(&meter, "sync_deletes", "Files and folders deleted"),
            conflicts: counter(
                &meter,
                "sync_conflicts",
                "Conflicts: legacy uploads turned into conflict copies and v1 commits or deletes refused with 409",
            ),
            restores: counter(&meter, "sync_restores", "Old versions made current again"),
            requests: counter(
                &meter,
                "sync_requests",
                "HTTP requests by method and route template",
            ),
            request_duration: meter
                .f64_histogram("sync_request_duration")
                .with_unit("s")
                .with_description("HTTP request latency by route template")
                .with_boundaries(SECONDS_BUCKETS.to_vec())
                .build(),
            bytes_received: counter(
                &meter,
                "sync_bytes_received",
                "File and chunk bytes received in request bodies",
            ),
            bytes_sent: counter(
                &meter,
                "sync_bytes_sent",
                "File and chunk bytes sent in response bodies",
            ),
            websocket_clients: meter
                .i64_up_down_counter("sync_websocket_clients")
                .with_description("Agents connected to /v1/ws")
                .build(),
            websocket_lagged: counter(
                &meter,
                "sync_websocket_lagged",
                "WebSocket clients closed for falling too far behind",
            ),
            chunks_stored: meter
                .i64_up_down_counter("sync_chunks_stored")
                .with_description("Chunks in the content store")
                .build(),
            chunk_bytes_stored: meter
                .i64_up_down_counter("sync_chunk_bytes_stored")
                .with_description("Bytes in the content store")
                .build(),
            dedup_saved_bytes: counter(
                &meter,
                "sync_dedup_saved_bytes",
                "Chunk bytes not stored (or not uploaded) because an identical chunk was already held",
            ),
            commit_duration: meter
                .f64_histogram("sync_commit_duration")
                .with_unit("s")
                .with_description("Time to commit a change, waiting for the commit lock included")
                .with_boundaries(SECONDS_BUCKETS.to_vec())
                .build(),
            chunks_damaged: counter(
                &meter,
                "sync_chunks_damaged",
                "Stored chunks whose bytes did not hash to their name when read (moved to damaged/)",
            ),
            chunks_wanted: meter
                .i64_up_down_counter("sync_chunks_wanted")
                .with_description(
                    "Chunks versions reference that the store lost (damaged or missing), asked of agents",
                )
                .build(),
            chunks_repaired: counter(
                &meter,
                "sync_chunks_repaired",
                "Lost chunks stored again from a good copy",
            ),
            gc_runs: counter(
                &meter,
                "sync_gc_runs",
                "Completed passes looking for chunks no version references",
            ),
            gc_removed_chunks: counter(
                &meter,
                "sync_gc_removed_chunks",
                "Unreferenced chunks removed after the grace period, or after a failed upload",
            ),
            gc_removed_bytes: counter(
                &meter,
                "sync_gc_removed_bytes",
                "Bytes of the chunks counted in sync_gc_removed_chunks",
            ),
            registry,
            _provider: provider,
        };
        // A series appears only after its first update: start every one at 0.
        for c in [
            &metrics.uploads,
            &metrics.deletes,
            &metrics.conflicts,
            &metrics.restores,
            &metrics.bytes_received,
            &metrics.bytes_sent,
            &metrics.websocket_lagged,
            &metrics.dedup_saved_bytes,
            &metrics.gc_runs,
            &metrics.gc_removed_chunks,
            &metrics.gc_removed_bytes,
        ] {
            c.add(0, &[]);
        }
        metrics.websocket_clients.add(0, &[]);
        metrics.chunks_stored.add(0, &[]);
        metrics.chunk_bytes_stored.add(0, &[]);
        Ok(metrics)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    pub fn record_request(&self, method: &str, endpoint: &str, seconds: f64) {
        self.requests.add(
            1,
            &[
                KeyValue::new("method", method.to_owned()),
                KeyValue::new("endpoint", endpoint.to_owned()),
            ],
        );
        self.request_duration
            .record(seconds, &[KeyValue::new("endpoint", endpoint.to_owned())]);
    }
}

fn counter(meter: &Meter, name: &'static str, description: &'static str) -> Counter<u64> {
    meter
        .u64_counter(name)
        .with_description(description)
        .build()
}

/// Route-layer middleware: counts and times each request under its route
/// template (`/v1/chunks/{hash}`), never the raw URL.
pub async fn track_requests(
    State(metrics): State<Arc<Metrics>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let endpoint = matched.map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(request).await;
    metrics.record_request(&method, &endpoint, started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics` on the metrics listener.
pub async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}
