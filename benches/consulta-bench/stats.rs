//! Latency histograms and the JSON summary.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Microsecond latencies from 1 µs to 60 s.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let _ = h.record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX).clamp(1, 60_000_000));
}

pub fn ms(us: u64) -> f64 {
    (us as f64) / 1000.0
}

/// `{count, p50_ms, p90_ms, p99_ms, max_ms}`.
pub fn summary(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "max_ms": ms(h.max()),
    })
}

pub fn progress(message: impl AsRef<str>) {
    eprintln!("[consulta-bench] {}", message.as_ref());
}
