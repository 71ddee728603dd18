//! `booking`: throughput and latency of `POST /api/appointments` at several
//! concurrency levels, each client booking distinct slots; then the slot
//! query over a 60-day horizon.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::{Server, ServerOptions};
use crate::setup::{self, Account, MySqlDatabase};
use crate::stats::{histogram, progress, record, summary};

pub struct Args {
    pub mysql: Option<String>,
    pub levels: Vec<usize>,
    pub seconds: u64,
    pub smtp_url: Option<String>,
}

pub async fn run(args: Args) -> Value {
    let database = match &args.mysql {
        Some(base) => Some(MySqlDatabase::create(base).await),
        None => None,
    };
    let extra_env = args.smtp_url.iter().map(|url| ("CONSULTA_SMTP_URL".to_owned(), url.clone())).collect();
    let server = Server::start(ServerOptions {
        database_url: database.as_ref().map(|d| d.url.clone()),
        extra_env,
        ..ServerOptions::default()
    });
    let database_url = database
        .as_ref()
        .map(|d| d.url.clone())
        .unwrap_or_else(|| format!("sqlite://{}/bench.db", server.dir.path().display()));
    let client = server.client();
    let max = args.levels.iter().copied().max().unwrap_or(1);
    progress(format!("setting up {max} doctors and {max} patients"));
    let admin = setup::admin(&server, &client, &database_url).await;
    let doctors = setup::doctors(&server, &client, &admin, max).await;
    let patients = setup::patients(&server, &client, max).await;
    // One counter per doctor: each booking takes that doctor's next free slot.
    let next_slot: Arc<Vec<AtomicU64>> = Arc::new((0..max).map(|_| AtomicU64::new(0)).collect());
    let day_one =
        (chrono::Utc::now() + chrono::Duration::days(1)).date_naive().and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let day_one = day_one.unwrap_or_else(chrono::Utc::now);

    let mut levels = Vec::new();
    for &clients in &args.levels {
        progress(format!("booking with {clients} concurrent clients for {} s", args.seconds));
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let started = Instant::now();
        let cpu_before = server.cpu_time();
        let mut tasks = Vec::new();
        for i in 0..clients {
            let (client, server_base) = (client.clone(), server.base());
            let (patient, doctor): (Account, Account) = (patients[i].clone(), doctors[i].clone());
            let next_slot = next_slot.clone();
            tasks.push(tokio::spawn(async move {
                let mut h = histogram();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let k = next_slot[i].fetch_add(1, Ordering::Relaxed);
                    let start = day_one + chrono::Duration::minutes(5 * i64::try_from(k).unwrap_or(0));
                    let t = Instant::now();
                    let r = client
                        .post(format!("{server_base}/api/appointments"))
                        .bearer_auth(&patient.token)
                        .json(&json!({"doctor_id": doctor.id, "start": start.to_rfc3339()}))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 201 => {
                            let _ = r.bytes().await;
                            record(&mut h, t.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (h, errors)
            }));
        }
        let mut all = histogram();
        let mut errors = 0;
        for task in tasks {
            if let Ok((h, e)) = task.await {
                let _ = all.add(&h);
                errors += e;
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = server.cpu_time().saturating_sub(cpu_before);
        let throughput = all.len() as f64 / elapsed;
        let mut level = summary(&all);
        level["clients"] = json!(clients);
        level["bookings_per_s"] = json!((throughput * 10.0).round() / 10.0);
        level["errors"] = json!(errors);
        level["server_cpu_ms_per_booking"] =
            json!((cpu.as_secs_f64() * 1000.0 / all.len().max(1) as f64 * 100.0).round() / 100.0);
        progress(format!(
            "  {clients:>3} clients: {:.0} bookings/s, p50 {} ms, p99 {} ms, {errors} errors",
            throughput, level["p50_ms"], level["p99_ms"]
        ));
        levels.push(level);
    }

    progress("slot query: 60 days of a doctor's free slots, 300 requests");
    let mut h = histogram();
    let from = day_one.date_naive();
    let to = from + chrono::Duration::days(59);
    let url = format!("{}/api/doctors/{}/slots?from={from}&to={to}", server.base(), doctors[0].id);
    let mut slot_count = 0;
    for _ in 0..300 {
        let t = Instant::now();
        if let Ok(r) = client.get(&url).bearer_auth(&patients[0].token).send().await {
            let slots: Vec<Value> = r.json().await.unwrap_or_default();
            slot_count = slots.len();
            record(&mut h, t.elapsed());
        }
    }
    let mut slots = summary(&h);
    slots["slots_returned"] = json!(slot_count);
    progress(format!(
        "  slots: p50 {} ms, p99 {} ms ({slot_count} slots per answer)",
        slots["p50_ms"], slots["p99_ms"]
    ));
    drop(server);
    if let Some(database) = database {
        database.drop_now().await;
    }
    json!({
        "scenario": "booking",
        "database": if args.mysql.is_some() { "mariadb" } else { "sqlite" },
        "smtp_url": args.smtp_url,
        "seconds_per_level": args.seconds,
        "levels": levels,
        "slot_query_60_days": slots,
    })
}
