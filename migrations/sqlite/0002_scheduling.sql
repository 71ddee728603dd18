-- Scheduling: availability, appointments, idempotency keys, the audit trail.

-- One row per doctor; `rules` is the validated availability as JSON.
CREATE TABLE availability (
    doctor_id  TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rules      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE appointments (
    id            TEXT PRIMARY KEY NOT NULL,
    doctor_id     TEXT NOT NULL REFERENCES users (id),
    patient_id    TEXT NOT NULL REFERENCES users (id),
    start_at      INTEGER NOT NULL,
    end_at        INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('scheduled', 'cancelled')),
    reason        TEXT,
    cancel_reason TEXT,
    cancelled_by  TEXT,
    sequence      INTEGER NOT NULL DEFAULT 0,
    -- start_at while scheduled, NULL once cancelled: lets unique indexes
    -- forbid two live appointments at the same start for one doctor or patient.
    active_start  INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    CHECK (start_at < end_at)
);

CREATE INDEX appointments_doctor_time ON appointments (doctor_id, start_at);
CREATE INDEX appointments_patient_time ON appointments (patient_id, start_at);
CREATE UNIQUE INDEX appointments_doctor_live ON appointments (doctor_id, active_start);
CREATE UNIQUE INDEX appointments_patient_live ON appointments (patient_id, active_start);

CREATE TABLE idempotency_keys (
    patient_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    idem_key       TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    appointment_id TEXT NOT NULL REFERENCES appointments (id),
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (patient_id, idem_key)
);

-- Append-only: nothing in the code updates or deletes these rows.
CREATE TABLE audit_log (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    user_id        TEXT,
    role           TEXT,
    action         TEXT NOT NULL,
    appointment_id TEXT,
    outcome        TEXT NOT NULL,
    client_ip      TEXT,
    request_id     TEXT
);

CREATE INDEX audit_log_appointment ON audit_log (appointment_id, seq);
