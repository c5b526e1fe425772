/* SPDX-License-Identifier: BSD-2-Clause */
/* Schema migrations. Each step runs in its own transaction together with the version bump;
 * never edit a released step, append a new one. */
#include "config.h"
#include "cp_schema.h"
#include "cp_sql.h"
#include "pc_err.h"
#include "pc_log.h"
#include <stdio.h>

static const char *const migrations[] = {
    /* 1: users, TOTP, hosts, tokens, login transactions, pushes, audit */
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  enabled INTEGER NOT NULL DEFAULT 1,"
    "  push INTEGER NOT NULL DEFAULT 1,"
    "  totp_seed BLOB,"                             /* AES-256-GCM sealed, see pc_secretbox.h */
    "  totp_last_step INTEGER NOT NULL DEFAULT -1," /* newest accepted time step: replay guard */
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  locked_until INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE user_groups ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  grp TEXT NOT NULL,"
    "  PRIMARY KEY (user_id, grp));"
    "CREATE TABLE hosts ("
    "  id INTEGER PRIMARY KEY,"
    "  hostname TEXT NOT NULL,"
    "  labels TEXT NOT NULL DEFAULT '{}',"
    "  enrolled_at INTEGER NOT NULL);"
    "CREATE TABLE tokens ("
    "  hash TEXT PRIMARY KEY," /* SHA-256 hex of the token; the token is never stored */
    "  kind TEXT NOT NULL CHECK (kind IN ('admin','enroll','host')),"
    "  host_id INTEGER REFERENCES hosts(id) ON DELETE CASCADE,"
    "  labels TEXT NOT NULL DEFAULT '{}',"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL DEFAULT 0," /* 0 = does not expire */
    "  used_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE transactions ("
    "  txid TEXT PRIMARY KEY,"
    "  host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,"
    "  user_name TEXT NOT NULL,"
    "  rhost TEXT, service TEXT, tty TEXT, auth_info TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('open','allowed','denied')),"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL);"
    "CREATE TABLE pushes ("
    "  id TEXT PRIMARY KEY,"
    "  txid TEXT NOT NULL UNIQUE REFERENCES transactions(txid) ON DELETE CASCADE,"
    "  user_name TEXT NOT NULL,"
    "  host_id INTEGER NOT NULL,"
    "  match TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending','approved','denied','expired')),"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  decided_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX pushes_pending ON pushes(state, expires_at);"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY,"
    "  time INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  user_name TEXT, host TEXT,"
    "  result TEXT NOT NULL,"
    "  reason TEXT, txid TEXT, source TEXT);"
    "CREATE INDEX audit_user_time ON audit(user_name, time);"
    "CREATE INDEX audit_time ON audit(time);"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;",
    /* 2: certificate authority, policy, user SSH keys, user logins, sessions, host keys */
    "CREATE TABLE certs ("
    "  serial INTEGER PRIMARY KEY AUTOINCREMENT," /* 1, 2, …: serial 0 cannot be revoked in a KRL */
    "  kind TEXT NOT NULL CHECK (kind IN ('user','host')),"
    "  key_id TEXT NOT NULL,"
    "  principals TEXT NOT NULL DEFAULT '[]'," /* JSON array */
    "  user_name TEXT,"
    "  host_id INTEGER,"
    "  fingerprint TEXT NOT NULL," /* of the certified key */
    "  valid_after INTEGER NOT NULL,"
    "  valid_before INTEGER NOT NULL,"
    "  issued_at INTEGER NOT NULL,"
    "  revoked_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX certs_user ON certs(user_name);"
    "CREATE INDEX certs_key_id ON certs(key_id);"
    "CREATE TABLE revoked_key_ids ("
    "  key_id TEXT PRIMARY KEY,"
    "  why TEXT NOT NULL CHECK (why IN ('admin','user_deleted')),"
    "  revoked_at INTEGER NOT NULL);"
    "CREATE TABLE krl_state (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);"
    "INSERT INTO krl_state(id, version) VALUES (1, 1);"
    "CREATE TABLE policies ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  body TEXT NOT NULL," /* the canonical POLICY object as JSON */
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE user_ssh_keys ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  fingerprint TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  public_key TEXT NOT NULL," /* TYPE BASE64, without comment */
    "  comment TEXT,"
    "  added_at INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, fingerprint));"
    "CREATE TABLE logins ("
    "  id TEXT PRIMARY KEY,"
    "  user_name TEXT NOT NULL,"
    "  fingerprint TEXT NOT NULL,"
    "  challenge BLOB NOT NULL,"
    "  ttl INTEGER NOT NULL," /* requested certificate TTL, 0 = default */
    "  state TEXT NOT NULL CHECK (state IN ('open','done','failed')),"
    "  source TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL);"
    "CREATE TABLE sessions ("
    "  hash TEXT PRIMARY KEY," /* SHA-256 hex of the session token */
    "  user_name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL);"
    "CREATE INDEX sessions_user ON sessions(user_name);"
    "ALTER TABLE hosts ADD COLUMN host_key TEXT;"
    "ALTER TABLE hosts ADD COLUMN principals TEXT NOT NULL DEFAULT '[]';",
    /* 3: push for `portcullis login`: transactions.host_id and pushes.host_id become nullable,
     * NULL being the control plane's own login (the transaction's txid is the login id). SQLite
     * cannot drop NOT NULL, so both tables are rebuilt; pushes first, since dropping
     * transactions with foreign keys on would cascade into it. */
    "CREATE TABLE pushes_copy AS SELECT * FROM pushes;"
    "DROP TABLE pushes;"
    "CREATE TABLE transactions_new ("
    "  txid TEXT PRIMARY KEY,"
    "  host_id INTEGER REFERENCES hosts(id) ON DELETE CASCADE," /* NULL: portcullis login */
    "  user_name TEXT NOT NULL,"
    "  rhost TEXT, service TEXT, tty TEXT, auth_info TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('open','allowed','denied')),"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL);"
    "INSERT INTO transactions_new SELECT txid, host_id, user_name, rhost, service, tty, auth_info,"
    "  state, created_at, expires_at FROM transactions;"
    "DROP TABLE transactions;"
    "ALTER TABLE transactions_new RENAME TO transactions;"
    "CREATE TABLE pushes ("
    "  id TEXT PRIMARY KEY,"
    "  txid TEXT NOT NULL UNIQUE REFERENCES transactions(txid) ON DELETE CASCADE,"
    "  user_name TEXT NOT NULL,"
    "  host_id INTEGER," /* NULL: portcullis login */
    "  match TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending','approved','denied','expired')),"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  decided_at INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO pushes SELECT id, txid, user_name, host_id, match, state, created_at, expires_at,"
    "  decided_at FROM pushes_copy;"
    "DROP TABLE pushes_copy;"
    "CREATE INDEX pushes_pending ON pushes(state, expires_at);",
    /* 4: the KRL's generated_date is the time of its last change (set with the version), so
     * the same revocations always give the same KRL bytes and agents rewrite revoked.krl only
     * when something changed. Existing stores start from the migration's time. */
    "ALTER TABLE krl_state ADD COLUMN changed_at INTEGER NOT NULL DEFAULT 0;"
    "UPDATE krl_state SET changed_at = CAST(strftime('%s', 'now') AS INTEGER);",
    /* 5: no credential outlives what vouched for it. sessions.fingerprint: the key the session
     * was created with (deleting that key ends it; NULL for sessions from before, which any key
     * deletion of their user ends). pushes.approver_expires_at: when the credential that
     * approved the push expires (0: never); a login it approves ends no later. */
    "ALTER TABLE sessions ADD COLUMN fingerprint TEXT;"
    "CREATE INDEX sessions_fingerprint ON sessions(fingerprint);"
    "ALTER TABLE pushes ADD COLUMN approver_expires_at INTEGER NOT NULL DEFAULT 0;",
    /* 6: retention (cp_retention.c) deletes by expiry: indexes, so each batch finds its rows
     * without a table scan under the write lock. */
    "CREATE INDEX transactions_expires ON transactions(expires_at);"
    "CREATE INDEX pushes_expires ON pushes(expires_at);"
    "CREATE INDEX logins_expires ON logins(expires_at);"
    "CREATE INDEX sessions_expires ON sessions(expires_at);",
    /* 7: failed codes count per (person, host) first: wrong codes from one host lock the
     * person on that host only (users.failures / locked_until keep the fleet-wide count and
     * lock). host_id 0 is the control plane's own `portcullis login`, hence no foreign key to
     * hosts: whatever deletes a host deletes its rows here too. */
    "CREATE TABLE auth_failures ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  host_id INTEGER NOT NULL,"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  last_failure_at INTEGER NOT NULL DEFAULT 0,"
    "  locked_until INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (user_id, host_id));"
    "CREATE INDEX auth_failures_host ON auth_failures(host_id);",
    /* 8: a host is what its enrollment token says: the token carries the hostname and host
     * principals (JSON array); a deleted host keeps its row (certificates and audit name it)
     * with deleted_at set, and only hosts with deleted_at = 0 hold their hostname. */
    "ALTER TABLE tokens ADD COLUMN hostname TEXT;"
    "ALTER TABLE tokens ADD COLUMN principals TEXT NOT NULL DEFAULT '[]';"
    "ALTER TABLE hosts ADD COLUMN deleted_at INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX hosts_hostname ON hosts(hostname);",
    /* 9: CA rotations (cp_ca_keys.h): the old and the new public key ("TYPE BASE64") of each,
     * its start, the planned end of its overlap and its finish (0 while both keys are
     * trusted); at most one rotation per CA is open. */
    "CREATE TABLE ca_rotations ("
    "  id INTEGER PRIMARY KEY,"
    "  kind TEXT NOT NULL CHECK (kind IN ('user','host')),"
    "  old_key TEXT NOT NULL,"
    "  new_key TEXT NOT NULL,"
    "  started_at INTEGER NOT NULL,"
    "  overlap_end INTEGER NOT NULL,"
    "  finished_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX ca_rotations_open ON ca_rotations(kind) WHERE finished_at = 0;",
    /* 10: access on request (cp_access.h). A request is pending until expires_at; approved it
     * is a grant from starts_at to ends_at. hosts: the requester's label selector (JSON), which
     * only narrows the rule policy_id. Audit rows of a request carry its id as txid. */
    "CREATE TABLE access_requests ("
    "  id TEXT PRIMARY KEY,"
    "  user_name TEXT NOT NULL,"
    "  account TEXT NOT NULL,"
    "  hosts TEXT NOT NULL DEFAULT '{}',"
    "  policy_id INTEGER NOT NULL,"
    "  approver_group TEXT NOT NULL,"
    "  duration INTEGER NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN"
    "    ('pending','active','denied','expired','revoked','ended')),"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  decided_by TEXT,"
    "  decided_at INTEGER NOT NULL DEFAULT 0,"
    "  decision_reason TEXT,"
    "  starts_at INTEGER NOT NULL DEFAULT 0,"
    "  ends_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX access_requests_user ON access_requests(user_name, state);"
    "CREATE INDEX access_requests_state ON access_requests(state, expires_at, ends_at);"
    "CREATE INDEX audit_txid ON audit(txid);",
    /* 11 (issue 18, `portcullis explain`): what auth/begin saw beside its audit row: the local
     * account asked for and the rules that matched (JSON array of {name, require_2fa}) at that
     * moment; kept as long as the transaction. */
    "CREATE TABLE tx_explain ("
    "  txid TEXT PRIMARY KEY REFERENCES transactions(txid) ON DELETE CASCADE,"
    "  account TEXT NOT NULL,"
    "  rules TEXT NOT NULL DEFAULT '[]');",
    /* 12 (agent failover): transactions.allowed_code: SHA-256 of "txid:code" of the code that
     * allowed the transaction, so that the agent's resend of that same submission to another
     * instance (the first copy may have been applied) is answered allow, not replay. */
    "ALTER TABLE transactions ADD COLUMN allowed_code TEXT;",
    /* 13 (issue 13): offline decisions uploaded by hosts, by the event id the agent drew, so an
     * upload repeated after a crash or a lost reply lands in the audit log once. */
    "CREATE TABLE offline_events ("
    "  id TEXT PRIMARY KEY,"
    "  host_id INTEGER NOT NULL,"
    "  received_at INTEGER NOT NULL);",
    /* 14: the approval web app (api_web.c): one-time invites (hash of the token), passkeys
     * (credential ID base64url, COSE algorithm, public key as libfido2 reads it), web sessions
     * (hash of the cookie) and server-issued WebAuthn challenges (hash; single use; an
     * approval's challenge is bound to its push). */
    "CREATE TABLE web_invites ("
    "  hash TEXT PRIMARY KEY,"
    "  user_name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  used_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE passkeys ("
    "  id INTEGER PRIMARY KEY,"
    "  user_name TEXT NOT NULL,"
    "  cred_id TEXT NOT NULL UNIQUE,"
    "  alg INTEGER NOT NULL CHECK (alg IN (-7, -8)),"
    "  pubkey BLOB NOT NULL,"
    "  sign_count INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  last_used_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX passkeys_user ON passkeys(user_name);"
    "CREATE TABLE web_sessions ("
    "  hash TEXT PRIMARY KEY,"
    "  user_name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL);"
    "CREATE TABLE web_challenges ("
    "  hash TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL CHECK (kind IN ('register','signin','approve')),"
    "  user_name TEXT," /* register: the invite's user; approve: the session's */
    "  bound TEXT,"     /* register: the invite's hash; approve: the push ID */
    "  expires_at INTEGER NOT NULL);"
    /* a deleted user's passkeys, invites and web sessions go with them: a new user of the
     * same name starts with none */
    "CREATE INDEX web_sessions_expires ON web_sessions(expires_at);"
    "CREATE INDEX web_invites_expires ON web_invites(expires_at);"
    "CREATE TRIGGER users_delete_web AFTER DELETE ON users BEGIN"
    "  DELETE FROM passkeys WHERE user_name = OLD.name;"
    "  DELETE FROM web_invites WHERE user_name = OLD.name;"
    "  DELETE FROM web_sessions WHERE user_name = OLD.name;"
    "  DELETE FROM web_challenges WHERE user_name = OLD.name;"
    "END;",
    /* 15: Web Push (cp_webpush.h). The VAPID key (one row), sealed with the master key
     * (AD "webpush:vapid"); each user's push subscriptions (keys as raw bytes). */
    "CREATE TABLE webpush_vapid ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  sealed BLOB NOT NULL,"
    "  public_key TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE webpush_subscriptions ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  endpoint TEXT NOT NULL,"
    "  p256dh BLOB NOT NULL,"
    "  auth BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (user_id, endpoint));",
    /* 16 (issue 13, offline codes): per (person, host) a random salt, and the slow hashes
     * (pc_offcode.h) of the person's codes by time step for that host's window; filled by a
     * background job (cp_offcodes.h), never per request. seed_mark: SHA-256 of the sealed seed
     * the hashes were computed from (a new seed drops them). Never a seed, never a code. */
    "CREATE TABLE offline_code_salts ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,"
    "  salt BLOB NOT NULL,"
    "  seed_mark TEXT NOT NULL,"
    "  PRIMARY KEY (user_id, host_id));"
    "CREATE TABLE offline_code_hashes ("
    "  user_id INTEGER NOT NULL,"
    "  host_id INTEGER NOT NULL,"
    "  step INTEGER NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  PRIMARY KEY (user_id, host_id, step),"
    "  FOREIGN KEY (user_id, host_id) REFERENCES offline_code_salts(user_id, host_id)"
    "  ON DELETE CASCADE);",
    /* 17 (issue 12, several instances): the server secrets every instance on one database must
     * share (TLS key and certificate, CA keys and a rotation's next key, the admin token), each
     * sealed with DIR/master.key under AD "secret:NAME" (cp_secrets.h). Used on PostgreSQL. */
    "CREATE TABLE server_secrets ("
    "  name TEXT PRIMARY KEY,"
    "  sealed BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL);",
};

static int current_version(cp_conn *db, int *version)
{
    cp_stmt *st;
    int rc;

    if (cp_exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);") !=
        PC_OK)
        return PC_ERR_STORE;
    st = cp_prepare(db, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
    if (!st)
        return PC_ERR_STORE;
    rc = cp_step(st);
    *version = rc == CP_ROW ? cp_col_int(st, 0) : -1;
    cp_finalize(st);
    return *version >= 0 ? PC_OK : PC_ERR_STORE;
}

int cp_schema_migrate(cp_conn *db, int *from, int *to, char *err, size_t errsz)
{
    /* PostgreSQL runs the same steps, written in its dialect (cp_schema_pg.c) */
    const int newest = (int)(sizeof migrations / sizeof migrations[0]);
    const char *const *steps = cp_sql_is_pg() ? cp_schema_pg_steps(newest) : migrations;
    int version;

    if (cp_tx_begin(db) != PC_OK || current_version(db, &version) != PC_OK) {
        cp_tx_rollback(db);
        snprintf(err, errsz, "cannot read the schema version: %s", cp_errmsg(db));
        return PC_ERR_STORE;
    }
    if (!steps) {
        cp_tx_rollback(db);
        snprintf(err, errsz, "PostgreSQL's schema steps do not match SQLite's (%d)", newest);
        return PC_ERR_STATE;
    }
    if (version > newest) {
        cp_tx_rollback(db);
        snprintf(err, errsz, "database schema version %d is newer than this portcullisd (%d)",
                 version, newest);
        return PC_ERR_STATE;
    }
    for (int v = version; v < newest; v++) {
        char bump[96];
        snprintf(bump, sizeof bump, "INSERT INTO schema_version(version) VALUES (%d);", v + 1);
        if (cp_exec(db, steps[v]) != PC_OK || cp_exec(db, bump) != PC_OK) {
            snprintf(err, errsz, "schema migration %d failed: %s", v + 1, cp_errmsg(db));
            cp_tx_rollback(db);
            return PC_ERR_STORE;
        }
        pc_log(PC_LOG_INFO, "event=schema_migrated version=%d", v + 1);
    }
    if (from)
        *from = version;
    if (to)
        *to = newest > version ? newest : version;
    return cp_tx_commit(db);
}
