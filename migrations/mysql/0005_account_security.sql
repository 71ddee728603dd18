-- Account security: password reset tokens, two-factor sign-in, and mails
-- that belong to no appointment (the password-reset mail).

-- Only the SHA-256 of a reset token is stored; the token itself exists in
-- the mail alone. Single use (`used_at`), 30 minutes (`expires_at`).
CREATE TABLE password_resets (
    token_hash CHAR(64)    NOT NULL PRIMARY KEY,
    user_id    VARCHAR(36) NOT NULL,
    created_at BIGINT      NOT NULL,
    expires_at BIGINT      NOT NULL,
    used_at    BIGINT      NULL,
    CONSTRAINT password_resets_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- TOTP (RFC 6238). `enabled_at` is null until the first code is confirmed;
-- `last_step` refuses a code's reuse within its 30-second window.
CREATE TABLE user_totp (
    user_id    VARCHAR(36) NOT NULL PRIMARY KEY,
    secret     VARCHAR(64) NOT NULL,
    enabled_at BIGINT      NULL,
    last_step  BIGINT      NOT NULL DEFAULT 0,
    created_at BIGINT      NOT NULL,
    CONSTRAINT user_totp_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One-time recovery codes, stored as SHA-256.
CREATE TABLE recovery_codes (
    code_hash CHAR(64)    NOT NULL PRIMARY KEY,
    user_id   VARCHAR(36) NOT NULL,
    used_at   BIGINT      NULL,
    CONSTRAINT recovery_codes_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- A password that was right, waiting for its second factor. Only the
-- SHA-256 of the challenge handed to the client is stored.
CREATE TABLE login_challenges (
    challenge_hash CHAR(64)    NOT NULL PRIMARY KEY,
    user_id        VARCHAR(36) NOT NULL,
    expires_at     BIGINT      NOT NULL,
    attempts       BIGINT      NOT NULL DEFAULT 0,
    used_at        BIGINT      NULL,
    CONSTRAINT login_challenges_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- mail_outbox: appointment_id becomes optional and a kind is added.
ALTER TABLE mail_outbox MODIFY appointment_id VARCHAR(36) NULL;
ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_kind_known;
ALTER TABLE mail_outbox ADD CONSTRAINT mail_outbox_kind_known
    CHECK (kind IN ('confirmation', 'update', 'cancellation', 'reminder', 'password_reset'));
