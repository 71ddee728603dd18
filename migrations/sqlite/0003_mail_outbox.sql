-- The mail outbox: every mail an appointment change causes is written here
-- in the change's own transaction; the delivery worker sends and marks it.
-- `payload` is a JSON snapshot of what the mail says (names, times, zone),
-- rendered into a message at send time. See docs/mail.md.
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('confirmation', 'update', 'cancellation', 'reminder')),
    appointment_id  TEXT NOT NULL REFERENCES appointments (id),
    recipient_id    TEXT NOT NULL REFERENCES users (id),
    recipient_email TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'dead', 'skipped')),
    send_after      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);

CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);
CREATE INDEX mail_outbox_appointment ON mail_outbox (appointment_id, kind, status);
