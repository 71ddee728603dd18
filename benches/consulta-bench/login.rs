//! `login`: bcrypt-bound sign-in throughput, and whether `/api/health`
//! stays quick while sign-ins saturate the hashing pool.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::{Server, ServerOptions};
use crate::setup;
use crate::stats::{histogram, progress, record, summary};

async fn health_latency(client: &reqwest::Client, base: &str, requests: usize) -> hdrhistogram::Histogram<u64> {
    let mut h = histogram();
    for _ in 0..requests {
        let t = Instant::now();
        if let Ok(r) = client.get(format!("{base}/api/health")).send().await {
            let _ = r.bytes().await;
            record(&mut h, t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h
}

pub async fn run(seconds: u64, cost: u32) -> Value {
    let server = Server::start(ServerOptions { bcrypt_cost: cost, ..ServerOptions::default() });
    let client = server.client();
    progress(format!("registering 16 patients (bcrypt cost {cost})"));
    let patients = setup::patients(&server, &client, 16).await;
    drop(patients);
    progress("health latency, idle");
    let idle = health_latency(&client, &server.base(), 400).await;
    progress(format!("sign-ins from 16 clients for {seconds} s, measuring health meanwhile"));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (client, base) = (client.clone(), server.base());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let r = client
                    .post(format!("{base}/api/auth/login"))
                    .json(&json!({"email": format!("patient{i}@bench.example"), "password": setup::PASSWORD}))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status() == 200) {
                    n += 1;
                }
            }
            n
        }));
    }
    let busy = health_latency(&client, &server.base(), 400).await;
    let mut logins = 0;
    for task in tasks {
        logins += task.await.unwrap_or(0);
    }
    let rate = logins as f64 / started.elapsed().as_secs_f64();
    let (idle_p99, busy_p99) = (idle.value_at_quantile(0.99), busy.value_at_quantile(0.99));
    let ratio = busy_p99 as f64 / idle_p99.max(1) as f64;
    progress(format!(
        "  {rate:.1} sign-ins/s; health p99 idle {} ms, busy {} ms (×{ratio:.2})",
        idle_p99 as f64 / 1000.0,
        busy_p99 as f64 / 1000.0
    ));
    json!({
        "scenario": "login",
        "bcrypt_cost": cost,
        "sign_ins_per_s": (rate * 10.0).round() / 10.0,
        "health_idle": summary(&idle),
        "health_during_sign_ins": summary(&busy),
        "health_p99_ratio_busy_to_idle": (ratio * 100.0).round() / 100.0,
    })
}
