/* SPDX-License-Identifier: BSD-2-Clause */
/* The PostgreSQL side of the store's SQL layer (cp_sql_pg.h), on libpq.
 *
 * A cp_stmt keeps the SQL with SQLite's '?'/'?N' parameters turned into $N (cp_sql_pg_translate.c)
 * and a copy of each bound value; the first cp_pg_step runs it (text results, blobs bound in
 * binary) and later steps hand out its rows. Each connection keeps up to PG_CACHE_MAX server-side
 * prepared statements (cp_sql_pg_cache.c), keyed by the SQL and the bound types, so a statement
 * the store runs again is parsed and planned once per connection.
 *
 * Secrets: bound values can be secrets (token hashes, sealed seeds). They are never logged, and
 * an error is logged with its SQLSTATE and primary message only (PostgreSQL's DETAIL line quotes
 * the offending row's values; a data exception's primary message quotes the value). The
 * connection string can hold a password: it is never kept here nor put in a message. */
#include "config.h"
#include "cp_sql_pg.h"
#include "cp_sql_pg_int.h"
#include "pc_err.h"
#include "pc_log.h"
#include "pc_mem.h"
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_INT8OID 20
#define PG_BYTEAOID 17
#define PG_TEXTOID 25

/* The store's one write lock (pg_advisory_xact_lock) on the whole database, every instance of
 * portcullisd included: "Portcull" in ASCII. */
#define PG_WRITE_LOCK_KEY "5795977089659530348"

/* Copies msg into out as one line, double quotes and backslashes escaped (it goes inside
 * error="…" of a log line). */
static void one_line(char *out, size_t outsz, const char *msg)
{
    size_t o = 0;

    if (!outsz)
        return;
    for (const char *p = msg ? msg : ""; *p && o + 2 < outsz; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            if (o && out[o - 1] != ' ' && p[1])
                out[o++] = ' ';
        } else {
            out[o++] = (char)c;
        }
    }
    while (o && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

static void set_err(cp_conn *db, const char *msg)
{
    if (db)
        one_line(db->err, sizeof db->err, msg);
}

/* The error of res (or of the connection) into db->err: SQLSTATE and primary message only. */
static void set_err_result(cp_conn *db, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *prim = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[400];

    if (!db)
        return;
    if (state && !strncmp(state, "22", 2)) /* data exception: the message quotes the value */
        prim = "invalid value for its column (value not logged)";
    if (!prim)
        prim = PQerrorMessage(db->pg);
    snprintf(msg, sizeof msg, "%s%s%s", state ? state : "", state ? " " : "", prim);
    set_err(db, msg);
}

static void drop_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* "relation already exists, skipping" and the like: not worth a line */
}

/* A commit is acknowledged only once it is durable, as SQLite's synchronous=FULL does here (a
 * code accepted once is never accepted again, also across a crash): a server or database set
 * to synchronous_commit = off would acknowledge commits it can still lose. Any other setting
 * (local, on, remote_write, remote_apply: a replica's) is kept. */
static void durable_commits(cp_conn *db)
{
    PGresult *r = PQexec(db->pg, "SHOW synchronous_commit");
    int off = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
              strcmp(PQgetvalue(r, 0, 0), "off") == 0;
    static int told;

    PQclear(r);
    if (!off)
        return;
    PQclear(PQexec(db->pg, "SET synchronous_commit = on"));
    if (!__atomic_exchange_n(&told, 1, __ATOMIC_RELAXED))
        pc_log(PC_LOG_WARN, "event=store_synchronous_commit store=postgresql set=on (the "
                            "server's setting would acknowledge commits it can lose)");
}

static int session_setup(cp_conn *db)
{
    PQsetNoticeProcessor(db->pg, drop_notice, NULL);
    cp_pg_cache_clear(db); /* a new session has none of them */
    durable_commits(db);
    return PC_OK;
}

int cp_pg_connect(const char *conninfo, cp_conn **out, char *err, size_t errsz)
{
    /* connect_timeout first, so that the URL may set its own; the last two override it */
    const char *keys[] = { "connect_timeout", "dbname", "application_name", "client_encoding",
                           NULL };
    const char *vals[] = { "10", conninfo, "portcullisd", "UTF8", NULL };
    cp_conn *db;

    if (out)
        *out = NULL;
    if (!conninfo || !out) {
        snprintf(err, errsz, "PostgreSQL: no connection string");
        return PC_ERR_INVAL;
    }
    db = calloc(1, sizeof *db);
    if (!db) {
        snprintf(err, errsz, "PostgreSQL: out of memory");
        return PC_ERR_NOMEM;
    }
    db->pg = PQconnectdbParams(keys, vals, 1);
    if (!db->pg || PQstatus(db->pg) != CONNECTION_OK) {
        char line[400];
        one_line(line, sizeof line, db->pg ? PQerrorMessage(db->pg) : "out of memory");
        snprintf(err, errsz, "PostgreSQL: cannot connect: %s", line);
        PQfinish(db->pg);
        free(db);
        return PC_ERR_STORE;
    }
    session_setup(db);
    *out = db;
    return PC_OK;
}

void cp_pg_close(cp_conn *db)
{
    if (!db)
        return;
    cp_pg_cache_clear(db);
    PQfinish(db->pg);
    free(db);
}

/* 1 when db can take a command. A connection that broke outside a transaction is opened again
 * (the server restarted, a proxy cut it); inside one it stays broken until COMMIT or ROLLBACK
 * ends that transaction, so that no statement of it runs on its own afterwards. */
static int usable(cp_conn *db)
{
    if (!db || !db->pg)
        return 0;
    if (PQstatus(db->pg) == CONNECTION_OK)
        return 1;
    if (db->in_tx) {
        set_err(db, "connection to PostgreSQL lost inside a transaction");
        return 0;
    }
    PQreset(db->pg);
    if (PQstatus(db->pg) != CONNECTION_OK) {
        set_err(db, PQerrorMessage(db->pg));
        return 0;
    }
    pc_log(PC_LOG_WARN, "event=store_reconnected store=postgresql");
    session_setup(db);
    return 1;
}

static int is_tx_end(const char *sql)
{
    return !strcmp(sql, "COMMIT") || !strcmp(sql, "ROLLBACK") || !strcmp(sql, "END");
}

static int is_change(const PGresult *res)
{
    const char *s = PQcmdStatus((PGresult *)res);

    return s && (!strncmp(s, "INSERT ", 7) || !strncmp(s, "UPDATE ", 7) ||
                 !strncmp(s, "DELETE ", 7) || !strncmp(s, "MERGE ", 6));
}

/* RELEASE NAME in a transaction that a failed statement aborted: PostgreSQL refuses everything
 * after that error (SQLite goes on), so the job's savepoint would fail to release and every
 * later job and the COMMIT with it. Instead its work is rolled back to the savepoint, the
 * savepoint released, and the RELEASE reported failed: the job fails alone, as a job that
 * returned an error would. */
static int release_aborted(cp_conn *db, const char *sql)
{
    char buf[96];
    PGresult *res;
    int ok;

    if (strlen(sql) >= sizeof buf - 16)
        return PC_ERR_STORE;
    snprintf(buf, sizeof buf, "ROLLBACK TO %s; %s", sql + 8, sql);
    res = PQexec(db->pg, buf);
    ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        set_err_result(db, res);
    else
        set_err(db, "a statement of this savepoint had failed: its work was rolled back");
    PQclear(res);
    pc_log(PC_LOG_ERR, "event=store_exec error=\"%s\"", db->err);
    return PC_ERR_STORE;
}

int cp_pg_exec(cp_conn *db, const char *sql)
{
    PGresult *res;
    ExecStatusType st;
    int ending, committed = 1;

    if (!db || !sql)
        return PC_ERR_STORE;
    ending = is_tx_end(sql);
    if (!usable(db)) {
        if (ending)
            db->in_tx = 0; /* that transaction is gone with its connection */
        pc_log(PC_LOG_ERR, "event=store_exec error=\"%s\"", db->err);
        return PC_ERR_STORE;
    }
    if (!strncmp(sql, "RELEASE ", 8) && !strchr(sql, ';') &&
        PQtransactionStatus(db->pg) == PQTRANS_INERROR)
        return release_aborted(db, sql);
    res = PQexec(db->pg, sql);
    st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        set_err_result(db, res);
        PQclear(res);
        if (ending || PQtransactionStatus(db->pg) == PQTRANS_IDLE)
            db->in_tx = 0;
        pc_log(PC_LOG_ERR, "event=store_exec error=\"%s\"", db->err);
        return PC_ERR_STORE;
    }
    /* COMMIT of an aborted transaction "succeeds" with the tag ROLLBACK: nothing was kept */
    if (ending && strcmp(sql, "ROLLBACK") != 0)
        committed = !strcmp(PQcmdStatus(res), "COMMIT");
    if (is_change(res)) { /* the last statement's, as SQLite counts after sqlite3_exec */
        const char *n = PQcmdTuples(res);
        db->changes = n && *n ? strtoll(n, NULL, 10) : 0;
    }
    PQclear(res);
    if (PQtransactionStatus(db->pg) == PQTRANS_IDLE)
        db->in_tx = 0;
    if (!committed) {
        set_err(db, "the transaction had failed: COMMIT rolled it back");
        pc_log(PC_LOG_ERR, "event=store_exec error=\"%s\"", db->err);
        return PC_ERR_STORE;
    }
    return PC_OK;
}

/* BEGIN, then the store's write lock, held until COMMIT or ROLLBACK: a transaction-scoped
 * advisory lock on one fixed key, shared by every portcullisd on this database. It gives
 * PostgreSQL the semantics of SQLite's BEGIN IMMEDIATE: one writer at a time, taken before the
 * first read, so read-check-write sequences (TOTP replay steps, lockout counters, certificate
 * serials, the KRL version) stay atomic when several instances share the database, without
 * relying on SERIALIZABLE retries. Reads outside transactions never wait for it. */
int cp_pg_tx_begin(cp_conn *db)
{
    if (!db)
        return PC_ERR_STORE;
    if (!cp_pg_autocommit(db)) {
        set_err(db, "a transaction is already open");
        return PC_ERR_STORE;
    }
    /* one round trip: the lock is taken before the transaction's first statement */
    if (cp_pg_exec(db, "BEGIN; SELECT pg_advisory_xact_lock(" PG_WRITE_LOCK_KEY ")") != PC_OK) {
        char keep[sizeof db->err];
        memcpy(keep, db->err, sizeof keep);
        if (!cp_pg_autocommit(db))
            cp_pg_exec(db, "ROLLBACK");
        db->in_tx = 0;
        memcpy(db->err, keep, sizeof keep);
        return PC_ERR_STORE;
    }
    db->in_tx = 1;
    return PC_OK;
}

int cp_pg_autocommit(cp_conn *db)
{
    if (!db || !db->pg)
        return 1;
    switch (PQtransactionStatus(db->pg)) {
    case PQTRANS_IDLE: db->in_tx = 0; return 1;
    case PQTRANS_UNKNOWN: return !db->in_tx; /* connection lost: see usable() */
    default: return 0;
    }
}

const char *cp_pg_errmsg(cp_conn *db)
{
    return db ? db->err : "no connection";
}

int64_t cp_pg_changes(cp_conn *db)
{
    return db ? db->changes : 0;
}

cp_stmt *cp_pg_prepare(cp_conn *db, const char *sql)
{
    cp_stmt *st;
    size_t n;

    if (!db || !sql)
        return NULL;
    st = calloc(1, sizeof *st);
    if (!st)
        goto oom;
    st->db = db;
    if (cp_pg_translate(sql, &st->sql, &st->sqllen, &st->nparams) != PC_OK) {
        free(st);
        set_err(db, "statement too long or parameter number out of range");
        pc_log(PC_LOG_ERR, "event=store_prepare error=\"%s\"", db->err);
        return NULL;
    }
    n = st->nparams > 0 ? (size_t)st->nparams : 1;
    st->vals = calloc(n, sizeof *st->vals);
    st->lens = calloc(n, sizeof *st->lens);
    st->fmts = calloc(n, sizeof *st->fmts);
    st->types = calloc(n, sizeof *st->types);
    st->kinds = malloc(n + 1);
    st->used = calloc(n, 1);
    if (!st->vals || !st->lens || !st->fmts || !st->types || !st->kinds || !st->used) {
        cp_pg_finalize(st);
        goto oom;
    }
    memset(st->kinds, 'n', n);
    st->kinds[st->nparams] = '\0';
    cp_pg_mark_used(st);
    return st;
oom:
    set_err(db, "out of memory");
    pc_log(PC_LOG_ERR, "event=store_prepare error=\"%s\"", db->err);
    return NULL;
}

static void clear_blobs(cp_stmt *st)
{
    if (!st->blobs)
        return;
    for (int c = 0; c < st->ncols; c++)
        pc_free_secret(st->blobs[c].p, st->blobs[c].n);
    free(st->blobs);
    st->blobs = NULL;
}

static void clear_result(cp_stmt *st)
{
    clear_blobs(st);
    PQclear(st->res);
    st->res = NULL;
    st->ran = 0;
    st->row = st->nrows = st->ncols = 0;
}

/* Stores a copy of v (n bytes, plus a '\0') as parameter idx; v NULL = SQL NULL. */
static int bind(cp_stmt *st, int idx, const void *v, size_t n, unsigned type, int fmt, char kind)
{
    char *copy = NULL;

    if (!st || idx < 1 || idx > st->nparams || n > INT_MAX - 1) {
        if (st)
            set_err(st->db, "bind index out of range");
        return PC_ERR_STORE;
    }
    if (v) {
        copy = malloc(n + 1);
        if (!copy) {
            set_err(st->db, "out of memory");
            return PC_ERR_NOMEM;
        }
        memcpy(copy, v, n);
        copy[n] = '\0';
    }
    idx--;
    if (st->vals[idx])
        pc_free_secret(st->vals[idx], (size_t)st->lens[idx] + 1);
    st->vals[idx] = copy;
    st->lens[idx] = v ? (int)n : 0;
    st->fmts[idx] = fmt;
    st->types[idx] = type;
    st->kinds[idx] = kind;
    return PC_OK;
}

int cp_pg_bind_int64(cp_stmt *st, int idx, int64_t v)
{
    char s[24];
    int n = snprintf(s, sizeof s, "%lld", (long long)v);

    return bind(st, idx, s, (size_t)n, PG_INT8OID, 0, 'i');
}

int cp_pg_bind_text(cp_stmt *st, int idx, const char *s)
{
    return s ? bind(st, idx, s, strlen(s), 0, 0, 't') : cp_pg_bind_null(st, idx);
}

int cp_pg_bind_blob(cp_stmt *st, int idx, const void *p, int n)
{
    if (n < 0 || (!p && n > 0)) {
        if (st)
            set_err(st->db, "bad blob length");
        return PC_ERR_STORE;
    }
    /* an empty blob is an empty value, not NULL (as in SQLite) */
    return bind(st, idx, p ? p : "", (size_t)n, PG_BYTEAOID, 1, 'b');
}

int cp_pg_bind_null(cp_stmt *st, int idx)
{
    return bind(st, idx, NULL, 0, 0, 0, 'n');
}

static int run(cp_stmt *st)
{
    cp_conn *db = st->db;
    const char *name;
    ExecStatusType rs;
    const char *state;
    int rc;

    if (!usable(db))
        goto fail;
    for (int i = 0; i < st->nparams; i++)
        if (!st->used[i] && !st->types[i])
            st->types[i] = PG_TEXTOID;        /* a gap (?1, ?3): PostgreSQL must be told its type */
    name = cp_pg_prepared_name(st, &st->res); /* st->res set: PREPARE failed, its error below */
    if (!st->res && name)
        st->res = PQexecPrepared(db->pg, name, st->nparams, (const char *const *)st->vals, st->lens,
                                 st->fmts, 0);
    else if (!st->res)
        st->res = PQexecParams(db->pg, st->sql, st->nparams, (const Oid *)st->types,
                               (const char *const *)st->vals, st->lens, st->fmts, 0);
    rs = st->res ? PQresultStatus(st->res) : PGRES_FATAL_ERROR;
    if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK) {
        set_err_result(db, st->res);
        state = st->res ? PQresultErrorField(st->res, PG_DIAG_SQLSTATE) : NULL;
        if (name && state && !strcmp(state, "26000")) /* prepared statement gone */
            cp_pg_cache_clear(db);
        /* class 23: unique, foreign key, check or not-null refused the change */
        rc = state && !strncmp(state, "23", 2) ? CP_CONSTRAINT : CP_ERROR;
        PQclear(st->res);
        st->res = NULL;
        pc_log(PC_LOG_ERR, "event=store_step error=\"%s\"", db->err);
        return rc;
    }
    st->ran = 1;
    st->row = -1;
    st->nrows = rs == PGRES_TUPLES_OK ? PQntuples(st->res) : 0;
    st->ncols = rs == PGRES_TUPLES_OK ? PQnfields(st->res) : 0;
    if (is_change(st->res)) {
        const char *n = PQcmdTuples(st->res);
        db->changes = n && *n ? strtoll(n, NULL, 10) : 0;
    }
    return CP_DONE;
fail:
    pc_log(PC_LOG_ERR, "event=store_step error=\"%s\"", db ? db->err : "no connection");
    return CP_ERROR;
}

int cp_pg_step(cp_stmt *st)
{
    int rc;

    if (!st)
        return CP_ERROR;
    clear_blobs(st);
    if (!st->ran && (rc = run(st)) != CP_DONE)
        return rc;
    if (st->row < st->nrows)
        st->row++;
    return st->row < st->nrows ? CP_ROW : CP_DONE;
}

int cp_pg_reset(cp_stmt *st)
{
    if (!st)
        return PC_ERR_STORE;
    clear_result(st);
    for (int i = 0; i < st->nparams; i++) {
        if (st->vals[i])
            pc_free_secret(st->vals[i], (size_t)st->lens[i] + 1);
        st->vals[i] = NULL;
        st->lens[i] = st->fmts[i] = 0;
        st->types[i] = 0;
        st->kinds[i] = 'n';
    }
    return PC_OK;
}

void cp_pg_finalize(cp_stmt *st)
{
    if (!st)
        return;
    if (st->vals)
        cp_pg_reset(st);
    else
        clear_result(st);
    free(st->vals);
    free(st->lens);
    free(st->fmts);
    free(st->types);
    free(st->kinds);
    free(st->used);
    free(st->sql);
    free(st);
}

/* The value at (current row, col), or NULL when there is none or it is SQL NULL. */
static const char *value(cp_stmt *st, int col)
{
    if (!st || !st->res || st->row < 0 || st->row >= st->nrows || col < 0 || col >= st->ncols ||
        PQgetisnull(st->res, st->row, col))
        return NULL;
    return PQgetvalue(st->res, st->row, col);
}

int64_t cp_pg_col_int64(cp_stmt *st, int col)
{
    const char *v = value(st, col);
    long long n;
    char *end;

    if (!v)
        return 0;
    if (!strcmp(v, "t"))
        return 1;
    if (!strcmp(v, "f"))
        return 0;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || end == v) /* like SQLite: a number's leading part, else 0 */
        return errno == ERANGE ? (n < 0 ? INT64_MIN : INT64_MAX) : 0;
    return (int64_t)n;
}

const char *cp_pg_col_text(cp_stmt *st, int col)
{
    const char *v = value(st, col);

    return v ? v : "";
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes col of the current row once: bytea's hex output ("\x…") to bytes; any other type is
 * its text, as SQLite gives a text column's bytes. */
static struct pg_blob *blob(cp_stmt *st, int col)
{
    const char *v = value(st, col);
    struct pg_blob *b;
    size_t len;

    if (!v)
        return NULL;
    if (!st->blobs && !(st->blobs = calloc((size_t)st->ncols, sizeof *st->blobs)))
        return NULL;
    b = &st->blobs[col];
    if (b->ok)
        return b;
    len = (size_t)PQgetlength(st->res, st->row, col);
    if (PQftype(st->res, col) == PG_BYTEAOID && len >= 2 && v[0] == '\\' && v[1] == 'x') {
        size_t n = (len - 2) / 2;
        if ((len - 2) % 2)
            return NULL;
        b->p = malloc(n ? n : 1);
        if (!b->p)
            return NULL;
        for (size_t i = 0; i < n; i++) {
            int hi = hexval((unsigned char)v[2 + 2 * i]), lo = hexval((unsigned char)v[3 + 2 * i]);
            if (hi < 0 || lo < 0) {
                pc_free_secret(b->p, n);
                b->p = NULL;
                return NULL;
            }
            b->p[i] = (unsigned char)(hi << 4 | lo);
        }
        b->n = n;
    } else {
        if (len > INT_MAX)
            return NULL;
        b->p = malloc(len ? len : 1);
        if (!b->p)
            return NULL;
        memcpy(b->p, v, len);
        b->n = len;
    }
    b->ok = 1;
    return b;
}

const void *cp_pg_col_blob(cp_stmt *st, int col)
{
    struct pg_blob *b = blob(st, col);

    return b && b->n ? b->p : NULL; /* SQLite: an empty blob reads as NULL */
}

int cp_pg_col_bytes(cp_stmt *st, int col)
{
    struct pg_blob *b = blob(st, col);

    return b && b->n <= INT_MAX ? (int)b->n : 0;
}

int cp_pg_col_is_null(cp_stmt *st, int col)
{
    return value(st, col) == NULL;
}
