-- The mail outbox: every mail an appointment change causes is written here
-- in the change's own transaction; the delivery worker sends and marks it.
-- `payload` is a JSON snapshot of what the mail says (names, times, zone),
-- rendered into a message at send time. See docs/mail.md.
CREATE TABLE mail_outbox (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    kind            VARCHAR(16)  NOT NULL,
    appointment_id  VARCHAR(36)  NOT NULL,
    recipient_id    VARCHAR(36)  NOT NULL,
    recipient_email VARCHAR(320) NOT NULL,
    payload         TEXT         NOT NULL,
    status          VARCHAR(16)  NOT NULL,
    send_after      BIGINT       NOT NULL,
    next_attempt_at BIGINT       NOT NULL,
    attempts        BIGINT       NOT NULL DEFAULT 0,
    lease_owner     VARCHAR(36)  NULL,
    lease_until     BIGINT       NULL,
    last_error      VARCHAR(1000) NULL,
    created_at      BIGINT       NOT NULL,
    sent_at         BIGINT       NULL,
    CONSTRAINT mail_outbox_appointment_fk FOREIGN KEY (appointment_id) REFERENCES appointments (id),
    CONSTRAINT mail_outbox_recipient_fk FOREIGN KEY (recipient_id) REFERENCES users (id),
    CONSTRAINT mail_outbox_kind_known CHECK (kind IN ('confirmation', 'update', 'cancellation', 'reminder')),
    CONSTRAINT mail_outbox_status_known CHECK (status IN ('pending', 'sending', 'sent', 'dead', 'skipped'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);
CREATE INDEX mail_outbox_appointment ON mail_outbox (appointment_id, kind, status);
