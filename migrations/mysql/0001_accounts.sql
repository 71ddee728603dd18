-- Accounts and sessions. Times are epoch milliseconds (UTC); ids are UUID text.
CREATE TABLE users (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    email         VARCHAR(254) NOT NULL,
    name          VARCHAR(400) NOT NULL,
    role          VARCHAR(16)  NOT NULL,
    timezone      VARCHAR(64)  NOT NULL,
    password_hash VARCHAR(100) NOT NULL,
    lock_version  BIGINT       NOT NULL DEFAULT 0,
    created_at    BIGINT       NOT NULL,
    updated_at    BIGINT       NOT NULL,
    CONSTRAINT users_email UNIQUE (email),
    CONSTRAINT users_role_known CHECK (role IN ('admin', 'doctor', 'patient'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE INDEX users_role ON users (role, name);

CREATE TABLE sessions (
    id           VARCHAR(36)  NOT NULL PRIMARY KEY,
    user_id      VARCHAR(36)  NOT NULL,
    created_at   BIGINT       NOT NULL,
    last_seen_at BIGINT       NOT NULL,
    expires_at   BIGINT       NOT NULL,
    revoked_at   BIGINT       NULL,
    client_ip    VARCHAR(45)  NULL,
    user_agent   VARCHAR(400) NULL,
    CONSTRAINT sessions_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE INDEX sessions_user ON sessions (user_id);
