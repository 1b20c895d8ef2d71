#include "store/Migrations.hpp"

namespace shoal::store {

// Conventions shared by both backends:
// - Key columns compare as plain bytes, so keys are case-sensitive, trailing blanks count and
//   ORDER BY is byte order. SQLite's default BINARY collation does this for TEXT; on MySQL the
//   key columns are VARBINARY (utf8mb4_bin would ignore trailing blanks, being a PAD SPACE
//   collation, and would refuse bytes that are not UTF-8).
// - Key column lengths are in bytes and fit InnoDB's 3072-byte index limit
//   (64 + 128 + 255 = 447 bytes for the plugin_documents primary key).
// - Text bodies are utf8mb4 on MySQL (4-byte characters such as emoji round-trip).
// - Timestamps are UTC ISO-8601 text written by shoald ("2024-05-01T12:00:00.123Z"), so both
//   backends hold the same value and no server time zone is involved. The cluster tables
//   (migrations 3 and 4) and the panel's (5) hold integer milliseconds since the Unix epoch
//   instead, because the queue and the session expiry compare and add to times in SQL.
// - DDL uses IF NOT EXISTS: MySQL commits DDL implicitly, and a process that dies between a
//   migration's DDL and its schema_migrations row can then simply run it again.

const std::string& schemaMigrationsTableSqlite() {
  static const std::string sql =
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version INTEGER NOT NULL PRIMARY KEY,"
      " name VARCHAR(128) NOT NULL,"
      " applied_at VARCHAR(32) NOT NULL)";
  return sql;
}

const std::string& schemaMigrationsTableMysql() {
  static const std::string sql =
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version INT NOT NULL PRIMARY KEY,"
      " name VARCHAR(128) NOT NULL,"
      " applied_at VARCHAR(32) NOT NULL"
      ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
  return sql;
}

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> list = {
      {1,
       "plugin_documents",
       {"CREATE TABLE IF NOT EXISTS plugin_documents ("
        " plugin VARCHAR(64) NOT NULL,"
        " collection VARCHAR(128) NOT NULL,"
        " doc_key VARCHAR(255) NOT NULL,"
        " body TEXT NOT NULL,"
        " revision BIGINT NOT NULL,"
        " updated_at VARCHAR(32) NOT NULL,"
        " PRIMARY KEY (plugin, collection, doc_key)"
        ") WITHOUT ROWID"},
       {"CREATE TABLE IF NOT EXISTS plugin_documents ("
        " plugin VARBINARY(64) NOT NULL,"
        " collection VARBINARY(128) NOT NULL,"
        " doc_key VARBINARY(255) NOT NULL,"
        " body LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " revision BIGINT NOT NULL,"
        " updated_at VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " PRIMARY KEY (plugin, collection, doc_key)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}},
      {2,
       "cluster_meta",
       {"CREATE TABLE IF NOT EXISTS cluster_meta ("
        " meta_key VARCHAR(64) NOT NULL PRIMARY KEY,"
        " meta_value TEXT NOT NULL"
        ") WITHOUT ROWID"},
       {"CREATE TABLE IF NOT EXISTS cluster_meta ("
        " meta_key VARBINARY(64) NOT NULL PRIMARY KEY,"
        " meta_value TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}},
      // Cluster membership (cluster/NodeRegistry.hpp). Times are integer milliseconds since the
      // Unix epoch (UTC): the queue compares and adds to them in SQL, identically on both
      // backends. Secrets are stored only as "sha256:<hex>" hashes. Nodes are never deleted; a
      // removed node keeps its row (state 'removed', credential revoked) for the history of
      // its deliveries.
      {3,
       "cluster_nodes",
       {"CREATE TABLE IF NOT EXISTS nodes ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " hostname VARCHAR(253) NOT NULL,"
        " address VARCHAR(255) NOT NULL,"
        " os_id VARCHAR(32) NOT NULL,"
        " os_version VARCHAR(32) NOT NULL,"
        " arch VARCHAR(32) NOT NULL,"
        " shoal_version VARCHAR(64) NOT NULL,"
        " state VARCHAR(16) NOT NULL,"
        " credential_hash VARCHAR(80),"
        " last_seen_ms BIGINT,"
        " joined_at_ms BIGINT NOT NULL)",
        "CREATE UNIQUE INDEX IF NOT EXISTS nodes_credential ON nodes (credential_hash)",
        "CREATE INDEX IF NOT EXISTS nodes_state ON nodes (state, last_seen_ms)",
        "CREATE TABLE IF NOT EXISTS node_roles ("
        " node_id BIGINT NOT NULL REFERENCES nodes (id),"
        " role VARCHAR(32) NOT NULL,"
        " PRIMARY KEY (node_id, role)"
        ") WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS node_roles_role ON node_roles (role, node_id)",
        "CREATE TABLE IF NOT EXISTS join_tokens ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " token_hash VARCHAR(80) NOT NULL UNIQUE,"
        " created_at_ms BIGINT NOT NULL,"
        " expires_at_ms BIGINT NOT NULL,"
        " used_at_ms BIGINT,"
        " used_by_node BIGINT)"},
       {"CREATE TABLE IF NOT EXISTS nodes ("
        " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " hostname VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " address VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " os_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " os_version VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " arch VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " shoal_version VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " state VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " credential_hash VARBINARY(80) NULL,"
        " last_seen_ms BIGINT NULL,"
        " joined_at_ms BIGINT NOT NULL,"
        " UNIQUE KEY nodes_credential (credential_hash),"
        " KEY nodes_state (state, last_seen_ms)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE IF NOT EXISTS node_roles ("
        " node_id BIGINT NOT NULL,"
        " role VARBINARY(32) NOT NULL,"
        " PRIMARY KEY (node_id, role),"
        " KEY node_roles_role (role, node_id),"
        " CONSTRAINT node_roles_node FOREIGN KEY (node_id) REFERENCES nodes (id)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE IF NOT EXISTS join_tokens ("
        " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " token_hash VARBINARY(80) NOT NULL,"
        " created_at_ms BIGINT NOT NULL,"
        " expires_at_ms BIGINT NOT NULL,"
        " used_at_ms BIGINT NULL,"
        " used_by_node BIGINT NULL,"
        " UNIQUE KEY join_tokens_hash (token_hash)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}},
      // The command queue (cluster/CommandQueue.hpp, docs/adr/0005-command-queue.md).
      // command_deliveries repeats its command's ordering_key so that the head of every
      // (node, key) comes from one index: deliveries_node_state covers the head query
      // (node_id, state = const, GROUP BY ordering_key, MIN(command_id)) and touches only the
      // node's unfinished rows, however long the history. command_ordering_keys has one row per
      // key ever used; enqueue locks it, so commands of one key get their ids in commit order.
      {4,
       "command_queue",
       {"CREATE TABLE IF NOT EXISTS commands ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " kind VARCHAR(128) NOT NULL,"
        " payload TEXT NOT NULL,"
        " ordering_key VARCHAR(128) NOT NULL,"
        " target_kind VARCHAR(8) NOT NULL,"
        " target_node_id BIGINT NOT NULL,"
        " target_role VARCHAR(32) NOT NULL,"
        " created_at_ms BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS command_ordering_keys ("
        " ordering_key VARCHAR(128) NOT NULL PRIMARY KEY,"
        " created_at_ms BIGINT NOT NULL"
        ") WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS command_deliveries ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " command_id BIGINT NOT NULL REFERENCES commands (id),"
        " node_id BIGINT NOT NULL REFERENCES nodes (id),"
        " ordering_key VARCHAR(128) NOT NULL,"
        " state VARCHAR(8) NOT NULL,"
        " attempts INTEGER NOT NULL,"
        " output TEXT NOT NULL,"
        " next_attempt_at_ms BIGINT,"
        " started_at_ms BIGINT,"
        " finished_at_ms BIGINT,"
        " created_at_ms BIGINT NOT NULL)",
        "CREATE UNIQUE INDEX IF NOT EXISTS deliveries_command_node"
        " ON command_deliveries (command_id, node_id)",
        "CREATE INDEX IF NOT EXISTS deliveries_node_state"
        " ON command_deliveries (node_id, state, ordering_key, command_id)",
        "CREATE INDEX IF NOT EXISTS deliveries_state ON command_deliveries (state, command_id)"},
       {"CREATE TABLE IF NOT EXISTS commands ("
        " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " kind VARBINARY(128) NOT NULL,"
        " payload MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " ordering_key VARBINARY(128) NOT NULL,"
        " target_kind VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " target_node_id BIGINT NOT NULL,"
        " target_role VARBINARY(32) NOT NULL,"
        " created_at_ms BIGINT NOT NULL"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE IF NOT EXISTS command_ordering_keys ("
        " ordering_key VARBINARY(128) NOT NULL PRIMARY KEY,"
        " created_at_ms BIGINT NOT NULL"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE IF NOT EXISTS command_deliveries ("
        " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " command_id BIGINT NOT NULL,"
        " node_id BIGINT NOT NULL,"
        " ordering_key VARBINARY(128) NOT NULL,"
        " state VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " attempts INT NOT NULL,"
        " output TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " next_attempt_at_ms BIGINT NULL,"
        " started_at_ms BIGINT NULL,"
        " finished_at_ms BIGINT NULL,"
        " created_at_ms BIGINT NOT NULL,"
        " UNIQUE KEY deliveries_command_node (command_id, node_id),"
        " KEY deliveries_node_state (node_id, state, ordering_key, command_id),"
        " KEY deliveries_state (state, command_id),"
        " CONSTRAINT deliveries_command FOREIGN KEY (command_id) REFERENCES commands (id),"
        " CONSTRAINT deliveries_node FOREIGN KEY (node_id) REFERENCES nodes (id)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}},
      // The web panel's security (auth/): its users, their login sessions and the audit log.
      // Passwords are stored only as scrypt hashes ("scrypt$N=...,r=...,p=...$salt$hash"),
      // session tokens only as "sha256:<hex>"; the CSRF token is kept as is, because the panel
      // puts it into the pages it serves. Times are integer milliseconds like the cluster's.
      // audit_log is append-only; audit_log_at serves listing and pruning by time.
      {5,
       "panel_auth",
       {"CREATE TABLE IF NOT EXISTS panel_users ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " name VARCHAR(64) NOT NULL UNIQUE,"
        " password_hash VARCHAR(255) NOT NULL,"
        " created_at_ms BIGINT NOT NULL,"
        " updated_at_ms BIGINT NOT NULL,"
        " disabled INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE IF NOT EXISTS panel_sessions ("
        " token_hash VARCHAR(80) NOT NULL PRIMARY KEY,"
        " user_id BIGINT NOT NULL REFERENCES panel_users (id),"
        " csrf_token VARCHAR(64) NOT NULL,"
        " created_at_ms BIGINT NOT NULL,"
        " last_seen_at_ms BIGINT NOT NULL,"
        " peer_address VARCHAR(255) NOT NULL"
        ") WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS panel_sessions_user ON panel_sessions (user_id)",
        "CREATE INDEX IF NOT EXISTS panel_sessions_last_seen ON panel_sessions (last_seen_at_ms)",
        "CREATE TABLE IF NOT EXISTS audit_log ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " at_ms BIGINT NOT NULL,"
        " actor VARCHAR(128) NOT NULL,"
        " action VARCHAR(64) NOT NULL,"
        " target TEXT NOT NULL,"
        " outcome VARCHAR(16) NOT NULL,"
        " status INTEGER NOT NULL,"
        " detail TEXT NOT NULL,"
        " peer_address VARCHAR(255) NOT NULL)",
        "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at_ms)"},
       {"CREATE TABLE IF NOT EXISTS panel_users ("
        " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " name VARBINARY(64) NOT NULL,"
        " password_hash VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " created_at_ms BIGINT NOT NULL,"
        " updated_at_ms BIGINT NOT NULL,"
        " disabled INT NOT NULL DEFAULT 0,"
        " UNIQUE KEY panel_users_name (name)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE IF NOT EXISTS panel_sessions ("
        " token_hash VARBINARY(80) NOT NULL PRIMARY KEY,"
        " user_id BIGINT NOT NULL,"
        " csrf_token VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " created_at_ms BIGINT NOT NULL,"
        " last_seen_at_ms BIGINT NOT NULL,"
        " peer_address VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " KEY panel_sessions_user (user_id),"
        " KEY panel_sessions_last_seen (last_seen_at_ms),"
        " CONSTRAINT panel_sessions_user FOREIGN KEY (user_id) REFERENCES panel_users (id)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE IF NOT EXISTS audit_log ("
        " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " at_ms BIGINT NOT NULL,"
        " actor VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " action VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " target TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " outcome VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " status INT NOT NULL,"
        " detail TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " peer_address VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " KEY audit_log_at (at_ms)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}},
      // Idempotency keys of POST /v1/commands: a key, the SHA-256 (hex) of the request it was
      // first used with, and the ids of the commands that request enqueued (comma-separated,
      // ascending; '' only inside the transaction that claims the key). Kept for a day, pruned
      // through the created_at_ms index.
      {6,
       "enqueue_idempotency_keys",
       {"CREATE TABLE IF NOT EXISTS enqueue_idempotency_keys ("
        " idempotency_key VARCHAR(128) NOT NULL PRIMARY KEY,"
        " request_hash VARCHAR(64) NOT NULL,"
        " command_ids TEXT NOT NULL,"
        " created_at_ms BIGINT NOT NULL"
        ") WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS enqueue_idempotency_keys_created"
        " ON enqueue_idempotency_keys (created_at_ms)"},
       {"CREATE TABLE IF NOT EXISTS enqueue_idempotency_keys ("
        " idempotency_key VARBINARY(128) NOT NULL PRIMARY KEY,"
        " request_hash VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " command_ids TEXT CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " created_at_ms BIGINT NOT NULL,"
        " KEY enqueue_idempotency_keys_created (created_at_ms)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}},
      // Refusals anyone can repeat cheaply are kept as one row per source, kind and minute:
      // repeat_count says how many it stands for (NULL for a row of one event, which is never
      // added to). audit_log_peer finds the minute's row of a source.
      {7,
       "audit_repeats",
       {"ALTER TABLE audit_log ADD COLUMN repeat_count BIGINT NULL",
        "CREATE INDEX IF NOT EXISTS audit_log_peer ON audit_log (peer_address, at_ms)"},
       {"ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS repeat_count BIGINT NULL",
        "CREATE INDEX IF NOT EXISTS audit_log_peer ON audit_log (peer_address, at_ms)"}},
      // Hosting (hosting/AccountStore.hpp, docs/adr/0013-hosting-accounts.md). Limits are JSON
      // objects {"http.domains": 10, "http.disk_mb": null}; a plan's are copied into the
      // account. A domain belongs to one account: its name (punycode) is the primary key, so two
      // accounts cannot hold it even when they race. The uid counter only grows. The outbox holds
      // the events of committed changes until the identity command is enqueued and the plugins'
      // hooks have run, so a manager that dies in between delivers them when it starts again.
      {8,
       "hosting",
       {"CREATE TABLE IF NOT EXISTS hosting_plans ("
        " name VARCHAR(64) NOT NULL PRIMARY KEY,"
        " description TEXT NOT NULL,"
        " limits_json TEXT NOT NULL,"
        " created_at_ms BIGINT NOT NULL,"
        " updated_at_ms BIGINT NOT NULL"
        ") WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS hosting_accounts ("
        " name VARCHAR(32) NOT NULL PRIMARY KEY,"
        " uid BIGINT NOT NULL UNIQUE,"
        " gid BIGINT NOT NULL,"
        " home VARCHAR(4096) NOT NULL,"
        " state VARCHAR(16) NOT NULL,"
        " suspend_reason TEXT NOT NULL,"
        " plan VARCHAR(64) NOT NULL,"
        " limits_json TEXT NOT NULL,"
        " revision BIGINT NOT NULL,"
        " created_at_ms BIGINT NOT NULL,"
        " updated_at_ms BIGINT NOT NULL"
        ") WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS hosting_accounts_plan ON hosting_accounts (plan)",
        "CREATE TABLE IF NOT EXISTS hosting_domains ("
        " name VARCHAR(253) NOT NULL PRIMARY KEY,"
        " account VARCHAR(32) NOT NULL REFERENCES hosting_accounts (name),"
        " unicode TEXT NOT NULL,"
        " kind VARCHAR(16) NOT NULL,"
        " parent VARCHAR(253) NOT NULL,"
        " nginx_extra TEXT NOT NULL,"
        " added_seq BIGINT NOT NULL"
        ") WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS hosting_domains_account ON hosting_domains (account, added_seq)",
        "CREATE TABLE IF NOT EXISTS hosting_certificates ("
        " account VARCHAR(32) NOT NULL PRIMARY KEY REFERENCES hosting_accounts (name),"
        " issuer VARCHAR(16) NOT NULL,"
        " names_json TEXT NOT NULL,"
        " certificate_pem TEXT NOT NULL,"
        " key_pem TEXT NOT NULL,"
        " not_after_ms BIGINT NOT NULL,"
        " fingerprint VARCHAR(128) NOT NULL"
        ") WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS hosting_counters ("
        " counter_name VARCHAR(64) NOT NULL PRIMARY KEY,"
        " next_value BIGINT NOT NULL"
        ") WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS hosting_outbox ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " event VARCHAR(64) NOT NULL,"
        " account VARCHAR(32) NOT NULL,"
        " payload TEXT NOT NULL,"
        " created_at_ms BIGINT NOT NULL)",
        "INSERT OR IGNORE INTO hosting_counters (counter_name, next_value) VALUES ('uid', 0)"},
       {"CREATE TABLE IF NOT EXISTS hosting_plans ("
        " name VARBINARY(64) NOT NULL PRIMARY KEY,"
        " description TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " limits_json TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " created_at_ms BIGINT NOT NULL,"
        " updated_at_ms BIGINT NOT NULL"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE IF NOT EXISTS hosting_accounts ("
        " name VARBINARY(32) NOT NULL PRIMARY KEY,"
        " uid BIGINT NOT NULL,"
        " gid BIGINT NOT NULL,"
        " home VARBINARY(4096) NOT NULL,"
        " state VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " suspend_reason TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " plan VARBINARY(64) NOT NULL,"
        " limits_json TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " revision BIGINT NOT NULL,"
        " created_at_ms BIGINT NOT NULL,"
        " updated_at_ms BIGINT NOT NULL,"
        " UNIQUE KEY hosting_accounts_uid (uid),"
        " KEY hosting_accounts_plan (plan)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE IF NOT EXISTS hosting_domains ("
        " name VARBINARY(253) NOT NULL PRIMARY KEY,"
        " account VARBINARY(32) NOT NULL,"
        " unicode TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " kind VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " parent VARBINARY(253) NOT NULL,"
        " nginx_extra TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " added_seq BIGINT NOT NULL,"
        " KEY hosting_domains_account (account, added_seq),"
        " CONSTRAINT hosting_domains_account FOREIGN KEY (account) REFERENCES hosting_accounts (name)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE IF NOT EXISTS hosting_certificates ("
        " account VARBINARY(32) NOT NULL PRIMARY KEY,"
        " issuer VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " names_json TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " certificate_pem MEDIUMTEXT CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " key_pem TEXT CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " not_after_ms BIGINT NOT NULL,"
        " fingerprint VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " CONSTRAINT hosting_certificates_account FOREIGN KEY (account) REFERENCES hosting_accounts (name)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE IF NOT EXISTS hosting_counters ("
        " counter_name VARBINARY(64) NOT NULL PRIMARY KEY,"
        " next_value BIGINT NOT NULL"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "CREATE TABLE IF NOT EXISTS hosting_outbox ("
        " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " event VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
        " account VARBINARY(32) NOT NULL,"
        " payload LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
        " created_at_ms BIGINT NOT NULL"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "INSERT IGNORE INTO hosting_counters (counter_name, next_value) VALUES ('uid', 0)"}},
      // Owners (docs/adr/0013-hosting-accounts.md, "Tenancy in one place"): a panel user is an
      // 'admin' (every user before this migration) or an 'owner' bound to one hosting account,
      // named in `account` ('' for admins). panel_users_account finds an account's owners when
      // the account is removed.
      {9,
       "panel_owners",
       {"ALTER TABLE panel_users ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'admin'",
        "ALTER TABLE panel_users ADD COLUMN account VARCHAR(32) NOT NULL DEFAULT ''",
        "CREATE INDEX IF NOT EXISTS panel_users_account ON panel_users (account)"},
       {"ALTER TABLE panel_users ADD COLUMN IF NOT EXISTS kind VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin"
        " NOT NULL DEFAULT 'admin'",
        "ALTER TABLE panel_users ADD COLUMN IF NOT EXISTS account VARBINARY(32) NOT NULL DEFAULT ''",
        "CREATE INDEX IF NOT EXISTS panel_users_account ON panel_users (account)"}},
  };
  return list;
}

}  // namespace shoal::store
