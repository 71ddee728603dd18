//! `consulta demo`: a doctor and a patient to try the product with.
//!
//! Every run gives both demo accounts a fresh random password and prints
//! it, so the printed logins always work and no fixed password exists.

use anyhow::Context as _;
use rand::seq::IndexedRandom as _;

use crate::accounts::{AccountInput, CreateAccountError, NewAccount, create_account};
use crate::auth::PasswordHasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::availability::{Availability, AvailabilityInput, WeeklyWindowInput};
use crate::domain::{Email, Password, Role};
use crate::startup::open_database;

const WORDS: &[&str] = &[
    "amber", "birch", "cobalt", "delta", "ember", "fjord", "granite", "harbor", "indigo", "juniper", "kestrel",
    "lagoon", "meadow", "nimbus", "orchid", "pepper", "quartz", "raven", "saffron", "tundra", "umber", "velvet",
    "willow", "yonder", "zephyr",
];

fn passphrase() -> String {
    let mut rng = rand::rng();
    let words: Vec<&str> = (0..4).filter_map(|_| WORDS.choose(&mut rng).copied()).collect();
    format!("{}-{}", words.join("-"), rand::random_range(10..100))
}

pub async fn seed(config: &Config) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    let hasher = PasswordHasher::new(config.bcrypt_cost).await?;
    let now = Clock::system().now();
    let people = [
        (Role::Doctor, "doctor@demo.consulta.test", "Dr. Ada Demo", "Europe/Berlin"),
        (Role::Patient, "patient@demo.consulta.test", "Pat Demo", "Europe/Berlin"),
    ];
    println!("Demo logins (open {}/login):", config.public_url.base());
    let mut doctor_id = None;
    for (role, email, name, timezone) in people {
        let password = passphrase();
        let input = AccountInput {
            email: email.into(),
            password: password.clone(),
            name: name.into(),
            timezone: timezone.into(),
        };
        let account: NewAccount =
            input.parse(role).map_err(|e| anyhow::anyhow!("demo account is not valid: {:?}", e.into_map()))?;
        let user = match create_account(&db, &hasher, &account, now).await {
            Ok(user) => user,
            Err(CreateAccountError::EmailTaken) => {
                let email = Email::parse(email).context("demo email")?;
                let (user, _) = db.user_with_hash_by_email(&email).await?.context("demo user vanished")?;
                let hash = hasher.hash(&Password::parse(&password, &[]).context("demo password")?).await?;
                db.update_password_hash(user.id, &hash, now).await?;
                db.revoke_other_sessions(user.id, None, now).await?;
                user
            }
            Err(e) => return Err(e.into()),
        };
        if role == Role::Doctor {
            doctor_id = Some(user.id);
        }
        println!("  {role:<8} {email:<28} {password}");
    }
    if let Some(doctor) = doctor_id {
        let availability = demo_availability()?;
        db.put_availability(doctor, &serde_json::to_string(&availability)?, now).await?;
        println!("The demo doctor sees patients every day 07:00–21:00 (Europe/Berlin) in 20-minute slots,");
        println!("bookable from 5 minutes ahead, so a call can start right away.");
    }
    db.close().await;
    Ok(())
}

/// Wide hours and a short notice, so a newcomer can book and join a call
/// within minutes of trying the product.
fn demo_availability() -> anyhow::Result<Availability> {
    let input = AvailabilityInput {
        timezone: "Europe/Berlin".into(),
        slot_minutes: 20,
        weekly: (1..=7)
            .map(|weekday| WeeklyWindowInput { weekday, start: "07:00".into(), end: "21:00".into() })
            .collect(),
        exceptions: Vec::new(),
        buffer_minutes: Some(0),
        min_notice_minutes: Some(5),
        horizon_days: Some(30),
        patient_cancel_notice_minutes: Some(0),
    };
    Availability::try_from(input).map_err(|e| anyhow::anyhow!("demo availability: {e}"))
}
