-- Scheduling: availability, appointments, idempotency keys, the audit trail.

-- One row per doctor; `rules` is the validated availability as JSON.
CREATE TABLE availability (
    doctor_id  VARCHAR(36) NOT NULL PRIMARY KEY,
    rules      MEDIUMTEXT  NOT NULL,
    updated_at BIGINT      NOT NULL,
    CONSTRAINT availability_doctor_fk FOREIGN KEY (doctor_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE appointments (
    id            VARCHAR(36)   NOT NULL PRIMARY KEY,
    doctor_id     VARCHAR(36)   NOT NULL,
    patient_id    VARCHAR(36)   NOT NULL,
    start_at      BIGINT        NOT NULL,
    end_at        BIGINT        NOT NULL,
    status        VARCHAR(16)   NOT NULL,
    reason        VARCHAR(2000) NULL,
    cancel_reason VARCHAR(2000) NULL,
    cancelled_by  VARCHAR(36)   NULL,
    sequence      BIGINT        NOT NULL DEFAULT 0,
    -- start_at while scheduled, NULL once cancelled: lets unique indexes
    -- forbid two live appointments at the same start for one doctor or patient.
    active_start  BIGINT        NULL,
    created_at    BIGINT        NOT NULL,
    updated_at    BIGINT        NOT NULL,
    CONSTRAINT appointments_doctor_fk FOREIGN KEY (doctor_id) REFERENCES users (id),
    CONSTRAINT appointments_patient_fk FOREIGN KEY (patient_id) REFERENCES users (id),
    CONSTRAINT appointments_status_known CHECK (status IN ('scheduled', 'cancelled')),
    CONSTRAINT appointments_ordered CHECK (start_at < end_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE INDEX appointments_doctor_time ON appointments (doctor_id, start_at);
CREATE INDEX appointments_patient_time ON appointments (patient_id, start_at);
CREATE UNIQUE INDEX appointments_doctor_live ON appointments (doctor_id, active_start);
CREATE UNIQUE INDEX appointments_patient_live ON appointments (patient_id, active_start);

CREATE TABLE idempotency_keys (
    patient_id     VARCHAR(36)  NOT NULL,
    idem_key       VARCHAR(200) NOT NULL,
    fingerprint    VARCHAR(128) NOT NULL,
    appointment_id VARCHAR(36)  NOT NULL,
    created_at     BIGINT       NOT NULL,
    PRIMARY KEY (patient_id, idem_key),
    CONSTRAINT idempotency_patient_fk FOREIGN KEY (patient_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT idempotency_appointment_fk FOREIGN KEY (appointment_id) REFERENCES appointments (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Append-only: nothing in the code updates or deletes these rows.
CREATE TABLE audit_log (
    seq            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at             BIGINT       NOT NULL,
    user_id        VARCHAR(36)  NULL,
    role           VARCHAR(16)  NULL,
    action         VARCHAR(32)  NOT NULL,
    appointment_id VARCHAR(36)  NULL,
    outcome        VARCHAR(32)  NOT NULL,
    client_ip      VARCHAR(45)  NULL,
    request_id     VARCHAR(36)  NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE INDEX audit_log_appointment ON audit_log (appointment_id, seq);
