//! Prometheus metrics in the text exposition format (version 0.0.4), without a client library.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the request latency histogram, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Upper bounds of the batch size histograms.
pub const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&mut self.counts) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    batch_requests: Option<Histogram>,
    batch_rows: Option<Histogram>,
    generated_tokens: u64,
    scored_items: u64,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// Requests waiting for the engine (accepted into the queue, not yet taken into a batch).
    pub queue_depth: AtomicI64,
    /// Requests being handled (from arrival to response).
    pub in_flight: AtomicI64,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Count a finished request and its latency.
    pub fn observe_request(&self, route: &str, status: u16, seconds: f64) {
        let mut m = self.inner.lock().unwrap();
        *m.requests.entry((route.to_string(), status)).or_insert(0) += 1;
        m.latency
            .entry(route.to_string())
            .or_insert_with(|| Histogram::new(&LATENCY_BUCKETS))
            .observe(seconds);
    }

    /// Record one engine batch: how many requests it merged and how many items/prompts they held.
    pub fn observe_batch(&self, requests: usize, rows: usize) {
        let mut m = self.inner.lock().unwrap();
        m.batch_requests
            .get_or_insert_with(|| Histogram::new(&BATCH_BUCKETS))
            .observe(requests as f64);
        m.batch_rows
            .get_or_insert_with(|| Histogram::new(&BATCH_BUCKETS))
            .observe(rows as f64);
    }

    pub fn add_generated_tokens(&self, n: usize) {
        self.inner.lock().unwrap().generated_tokens += n as u64;
    }

    pub fn add_scored_items(&self, n: usize) {
        self.inner.lock().unwrap().scored_items += n as u64;
    }

    /// Requests counted so far for a route and status (for tests and logs).
    pub fn request_count(&self, route: &str, status: u16) -> u64 {
        let m = self.inner.lock().unwrap();
        m.requests
            .get(&(route.to_string(), status))
            .copied()
            .unwrap_or(0)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let m = self.inner.lock().unwrap();
        let mut out = String::new();
        out.push_str("# HELP modrl_requests_total HTTP requests by route and status code.\n");
        out.push_str("# TYPE modrl_requests_total counter\n");
        for ((route, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "modrl_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP modrl_request_duration_seconds Request latency from arrival to response.\n",
        );
        out.push_str("# TYPE modrl_request_duration_seconds histogram\n");
        for (route, h) in &m.latency {
            h.render(
                &mut out,
                "modrl_request_duration_seconds",
                &format!("route=\"{}\"", escape(route)),
            );
        }
        out.push_str("# HELP modrl_batch_size Requests merged into one engine batch.\n");
        out.push_str("# TYPE modrl_batch_size histogram\n");
        m.batch_requests
            .clone()
            .unwrap_or_else(|| Histogram::new(&BATCH_BUCKETS))
            .render(&mut out, "modrl_batch_size", "");
        out.push_str("# HELP modrl_batch_items Items (texts or prompts) in one engine batch.\n");
        out.push_str("# TYPE modrl_batch_items histogram\n");
        m.batch_rows
            .clone()
            .unwrap_or_else(|| Histogram::new(&BATCH_BUCKETS))
            .render(&mut out, "modrl_batch_items", "");
        out.push_str("# HELP modrl_queue_depth Requests waiting for the engine.\n");
        out.push_str("# TYPE modrl_queue_depth gauge\n");
        let _ = writeln!(
            out,
            "modrl_queue_depth {}",
            self.queue_depth.load(Ordering::Relaxed)
        );
        out.push_str("# HELP modrl_requests_in_flight Requests being handled.\n");
        out.push_str("# TYPE modrl_requests_in_flight gauge\n");
        let _ = writeln!(
            out,
            "modrl_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        out.push_str("# HELP modrl_generated_tokens_total Tokens sampled by the engine.\n");
        out.push_str("# TYPE modrl_generated_tokens_total counter\n");
        let _ = writeln!(out, "modrl_generated_tokens_total {}", m.generated_tokens);
        out.push_str("# HELP modrl_scored_items_total Texts scored under a policy.\n");
        out.push_str("# TYPE modrl_scored_items_total counter\n");
        let _ = writeln!(out, "modrl_scored_items_total {}", m.scored_items);
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::new();
        m.observe_request("/v1/x", 200, 0.003);
        m.observe_request("/v1/x", 200, 0.2);
        m.observe_request("/v1/x", 429, 100.0);
        let t = m.render();
        assert!(t.contains("modrl_requests_total{route=\"/v1/x\",status=\"200\"} 2"));
        assert!(t.contains("modrl_requests_total{route=\"/v1/x\",status=\"429\"} 1"));
        assert!(t.contains("modrl_request_duration_seconds_bucket{route=\"/v1/x\",le=\"0.005\"} 1"));
        assert!(t.contains("modrl_request_duration_seconds_bucket{route=\"/v1/x\",le=\"0.25\"} 2"));
        assert!(t.contains("modrl_request_duration_seconds_bucket{route=\"/v1/x\",le=\"60\"} 2"));
        assert!(t.contains("modrl_request_duration_seconds_bucket{route=\"/v1/x\",le=\"+Inf\"} 3"));
        assert!(t.contains("modrl_request_duration_seconds_count{route=\"/v1/x\"} 3"));
        m.observe_batch(3, 7);
        let t = m.render();
        assert!(t.contains("modrl_batch_size_bucket{le=\"2\"} 0"));
        assert!(t.contains("modrl_batch_size_bucket{le=\"4\"} 1"));
        assert!(t.contains("modrl_batch_items_sum 7"));
    }
}
