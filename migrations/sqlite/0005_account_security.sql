-- Account security: password reset tokens, two-factor sign-in, and mails
-- that belong to no appointment (the password-reset mail).

-- Only the SHA-256 of a reset token is stored; the token itself exists in
-- the mail alone. Single use (`used_at`), 30 minutes (`expires_at`).
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

CREATE INDEX password_resets_user ON password_resets (user_id);

-- TOTP (RFC 6238). `enabled_at` is null until the first code is confirmed;
-- `last_step` refuses a code's reuse within its 30-second window.
CREATE TABLE user_totp (
    user_id    TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    enabled_at INTEGER,
    last_step  INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

-- One-time recovery codes, stored as SHA-256.
CREATE TABLE recovery_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    used_at   INTEGER
);

CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- A password that was right, waiting for its second factor. Only the
-- SHA-256 of the challenge handed to the client is stored.
CREATE TABLE login_challenges (
    challenge_hash TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at     INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    used_at        INTEGER
);

-- mail_outbox: appointment_id becomes optional and a kind is added. SQLite
-- changes neither in place, so the table is rebuilt.
CREATE TABLE mail_outbox_new (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('confirmation', 'update', 'cancellation', 'reminder', 'password_reset')),
    appointment_id  TEXT REFERENCES appointments (id),
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

INSERT INTO mail_outbox_new (id, kind, appointment_id, recipient_id, recipient_email, payload, status, send_after,
    next_attempt_at, attempts, lease_owner, lease_until, last_error, created_at, sent_at)
SELECT id, kind, appointment_id, recipient_id, recipient_email, payload, status, send_after,
    next_attempt_at, attempts, lease_owner, lease_until, last_error, created_at, sent_at FROM mail_outbox;

DROP TABLE mail_outbox;
ALTER TABLE mail_outbox_new RENAME TO mail_outbox;
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);
CREATE INDEX mail_outbox_appointment ON mail_outbox (appointment_id, kind, status);
