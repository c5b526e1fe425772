/* SPDX-License-Identifier: BSD-2-Clause */
/* Tests of the store's PostgreSQL layer (control-plane/cp_sql_pg.c) against a real server:
 * parameters ('?', '?N', quotes), binds and columns (int64 limits, text with quotes, bytea with
 * every byte value, NULL), changes, constraint errors (class 23) and values kept out of error
 * messages, savepoints after an error inside a transaction, the write lock's transaction, a
 * connection killed outside and inside a transaction.
 * The database: PC_TEST_PG_URL (an empty database, e.g. from tests/lib/pgserver.py); without it
 * every test is skipped. tests/integration/test_store_flags.py runs it on a throwaway cluster. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_sql_pg.h"
#include "pc_err.h"

static const char *url(void)
{
    const char *u = getenv("PC_TEST_PG_URL");
    return u && *u ? u : NULL;
}

static int setup(void **state)
{
    cp_conn *db = NULL;
    char err[512];

    if (!url()) {
        *state = NULL;
        return 0;
    }
    assert_int_equal(cp_pg_connect(url(), &db, err, sizeof err), PC_OK);
    assert_int_equal(cp_pg_exec(db, "DROP TABLE IF EXISTS t;"
                                    "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, name TEXT UNIQUE,"
                                    " n BIGINT, b BYTEA, ok BOOLEAN, CHECK (n >= 0))"),
                     PC_OK);
    *state = db;
    return 0;
}

static int teardown(void **state)
{
    cp_pg_close(*state);
    return 0;
}

#define NEED_DB(db) \
    do { \
        if (!(db)) \
            skip(); \
    } while (0)

static void test_connect_error_hides_the_password(void **state)
{
    cp_conn *db = (cp_conn *)1;
    char err[512];

    (void)state;
    assert_int_not_equal(cp_pg_connect("postgresql://u:Sekr3tPw@/pc?host=/nonexistent-dir", &db,
                                       err, sizeof err),
                         PC_OK);
    assert_null(db);
    assert_non_null(strstr(err, "cannot connect"));
    assert_null(strstr(err, "Sekr3tPw"));
    assert_null(strstr(err, "postgresql://"));
}

static void test_binds_columns_changes(void **state)
{
    cp_conn *db = *state;
    cp_stmt *st;
    unsigned char all[256];

    NEED_DB(db);
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    st = cp_pg_prepare(db, "INSERT INTO t(name, n, b, ok) VALUES (?, ?, ?, ?4) RETURNING id");
    assert_non_null(st);
    for (int i = 0; i < 3; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "it's \"%d\" ?", i);
        assert_int_equal(cp_pg_bind_text(st, 1, nm), PC_OK);
        assert_int_equal(cp_pg_bind_int64(st, 2, i == 2 ? INT64_MAX : i), PC_OK);
        assert_int_equal(cp_pg_bind_blob(st, 3, all, i == 1 ? 256 : 0), PC_OK);
        assert_int_equal(cp_pg_bind_null(st, 4), PC_OK);
        assert_int_equal(cp_pg_step(st), CP_ROW);
        assert_int_equal(cp_pg_col_int64(st, 0), i + 1);
        assert_int_equal(cp_pg_step(st), CP_DONE);
        assert_int_equal(cp_pg_changes(db), 1);
        assert_int_equal(cp_pg_reset(st), PC_OK);
    }
    assert_int_not_equal(cp_pg_bind_int64(st, 5, 1), PC_OK); /* no ?5 */
    assert_int_not_equal(cp_pg_bind_int64(st, 0, 1), PC_OK);
    cp_pg_finalize(st);

    st = cp_pg_prepare(db, "SELECT id, name, n, b, ok, ok IS NULL, 'what?', \"n\" FROM t"
                           " WHERE id >= ?1 AND name <> ? ORDER BY id");
    assert_non_null(st);
    cp_pg_bind_int64(st, 1, 2);
    cp_pg_bind_text(st, 2, "x");
    assert_int_equal(cp_pg_step(st), CP_ROW);
    assert_int_equal(cp_pg_col_int64(st, 0), 2);
    assert_string_equal(cp_pg_col_text(st, 1), "it's \"1\" ?");
    assert_int_equal(cp_pg_col_bytes(st, 3), 256);
    assert_memory_equal(cp_pg_col_blob(st, 3), all, 256);
    assert_true(cp_pg_col_is_null(st, 4));
    assert_string_equal(cp_pg_col_text(st, 4), "");
    assert_int_equal(cp_pg_col_int64(st, 4), 0);
    assert_int_equal(cp_pg_col_int64(st, 5), 1); /* 't' */
    assert_string_equal(cp_pg_col_text(st, 6), "what?");
    assert_int_equal(cp_pg_col_is_null(st, 99), 1); /* out of range: NULL */
    assert_int_equal(cp_pg_step(st), CP_ROW);
    assert_int_equal(cp_pg_col_int64(st, 2), INT64_MAX);
    assert_int_equal(cp_pg_col_bytes(st, 3), 0); /* empty blob: 0 bytes, NULL pointer */
    assert_null(cp_pg_col_blob(st, 3));
    assert_false(cp_pg_col_is_null(st, 3));
    assert_int_equal(cp_pg_step(st), CP_DONE);
    assert_true(cp_pg_col_is_null(st, 0));
    cp_pg_finalize(st);

    st = cp_pg_prepare(db, "UPDATE t SET n = n - 1 WHERE id <= ?");
    cp_pg_bind_int64(st, 1, 3);
    assert_int_equal(cp_pg_step(st), CP_CONSTRAINT); /* row 1: n = -1 breaks the CHECK */
    cp_pg_reset(st);
    cp_pg_bind_int64(st, 1, 0);
    assert_int_equal(cp_pg_step(st), CP_DONE);
    assert_int_equal(cp_pg_changes(db), 0);
    cp_pg_finalize(st);
}

static void test_errors_never_quote_values(void **state)
{
    cp_conn *db = *state;
    cp_stmt *st;

    NEED_DB(db);
    st = cp_pg_prepare(db, "INSERT INTO t(name, n) VALUES (?, 1)");
    cp_pg_bind_text(st, 1, "dup-Secret-Name");
    assert_int_equal(cp_pg_step(st), CP_DONE);
    cp_pg_reset(st);
    cp_pg_bind_text(st, 1, "dup-Secret-Name");
    assert_int_equal(cp_pg_step(st), CP_CONSTRAINT);
    assert_non_null(strstr(cp_pg_errmsg(db), "23505"));
    assert_null(strstr(cp_pg_errmsg(db), "dup-Secret-Name")); /* DETAIL would have it */
    cp_pg_finalize(st);
    st = cp_pg_prepare(db, "SELECT CAST(? AS BIGINT)");
    cp_pg_bind_text(st, 1, "not-a-number-Secret");
    assert_int_equal(cp_pg_step(st), CP_ERROR);
    assert_null(strstr(cp_pg_errmsg(db), "Secret"));
    assert_null(strchr(cp_pg_errmsg(db), '\n'));
    cp_pg_finalize(st);
}

static void test_parameters(void **state)
{
    cp_conn *db = *state;
    cp_stmt *st;

    NEED_DB(db);
    /* '?' after '?3' is ?4; quoted '?' and "?x" are no parameters */
    st = cp_pg_prepare(db, "SELECT ?, ?3, ?, '?''?', \"?x\", ?2 FROM (SELECT 1 AS \"?x\") s");
    assert_non_null(st);
    assert_int_equal(cp_pg_bind_text(st, 1, "one"), PC_OK);
    assert_int_equal(cp_pg_bind_int64(st, 2, 2), PC_OK);
    assert_int_equal(cp_pg_bind_text(st, 3, "three"), PC_OK);
    assert_int_equal(cp_pg_bind_int64(st, 4, 4), PC_OK);
    assert_int_not_equal(cp_pg_bind_int64(st, 5, 5), PC_OK);
    assert_int_equal(cp_pg_step(st), CP_ROW);
    assert_string_equal(cp_pg_col_text(st, 0), "one");
    assert_string_equal(cp_pg_col_text(st, 1), "three");
    assert_string_equal(cp_pg_col_text(st, 2), "4");
    assert_string_equal(cp_pg_col_text(st, 3), "?'?");
    assert_int_equal(cp_pg_col_int64(st, 4), 1);
    assert_int_equal(cp_pg_col_int64(st, 5), 2);
    cp_pg_finalize(st);
    /* a parameter the SQL never names (SQLite allows it) is sent typed, unbound or bound */
    for (int i = 0; i < 2; i++) {
        st = cp_pg_prepare(db, "SELECT ?1 || 'x', ?3 || 'y'");
        cp_pg_bind_text(st, 1, "a");
        if (i)
            cp_pg_bind_text(st, 2, "unused");
        cp_pg_bind_text(st, 3, "b");
        assert_int_equal(cp_pg_step(st), CP_ROW);
        assert_string_equal(cp_pg_col_text(st, 0), "ax");
        assert_string_equal(cp_pg_col_text(st, 1), "by");
        cp_pg_finalize(st);
    }
    assert_null(cp_pg_prepare(db, "SELECT ?70000"));
    assert_null(cp_pg_prepare(db, "SELECT ?0"));
    /* the same statement again, with other types bound: each (SQL, types) its own plan,
     * prepared once on this connection */
    for (int i = 0; i < 5; i++) {
        st = cp_pg_prepare(db, "SELECT COALESCE(CAST(? AS TEXT), 'null')");
        if (i == 1)
            cp_pg_bind_null(st, 1);
        else
            cp_pg_bind_text(st, 1, "x");
        assert_int_equal(cp_pg_step(st), CP_ROW);
        assert_string_equal(cp_pg_col_text(st, 0), i == 1 ? "null" : "x");
        cp_pg_finalize(st);
    }
    st = cp_pg_prepare(db, "SELECT COUNT(*) FROM pg_prepared_statements"
                           " WHERE statement LIKE 'SELECT COALESCE(CAST($1 AS TEXT)%'");
    assert_int_equal(cp_pg_step(st), CP_ROW);
    assert_int_equal(cp_pg_col_int64(st, 0), 2); /* text and NULL */
    cp_pg_finalize(st);
}

static void test_savepoint_after_error_and_write_lock(void **state)
{
    cp_conn *db = *state;
    cp_stmt *st;

    NEED_DB(db);
    assert_true(cp_pg_autocommit(db));
    assert_int_equal(cp_pg_tx_begin(db), PC_OK);
    assert_false(cp_pg_autocommit(db));
    assert_int_not_equal(cp_pg_tx_begin(db), PC_OK); /* no nesting */
    st = cp_pg_prepare(db, "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory'"
                           " AND pid = pg_backend_pid() AND granted");
    assert_int_equal(cp_pg_step(st), CP_ROW);
    assert_int_equal(cp_pg_col_int64(st, 0), 1);
    cp_pg_finalize(st);
    assert_int_equal(cp_pg_exec(db, "SAVEPOINT cp_job"), PC_OK);
    assert_int_equal(cp_pg_exec(db, "INSERT INTO t(name, n) VALUES ('sp-a', 1)"), PC_OK);
    assert_int_not_equal(cp_pg_exec(db, "INSERT INTO t(name, n) VALUES ('sp-a', 1)"), PC_OK);
    assert_false(cp_pg_autocommit(db));
    assert_int_equal(cp_pg_exec(db, "ROLLBACK TO cp_job"), PC_OK);
    assert_int_equal(cp_pg_exec(db, "RELEASE cp_job"), PC_OK);
    assert_int_equal(cp_pg_exec(db, "SAVEPOINT cp_job"), PC_OK);
    st = cp_pg_prepare(db, "SELECT no_such_column FROM t WHERE id = ?");
    cp_pg_bind_int64(st, 1, 1);
    assert_int_equal(cp_pg_step(st), CP_ERROR);
    assert_non_null(strstr(cp_pg_errmsg(db), "42703")); /* the real error, not "aborted" */
    cp_pg_finalize(st);
    assert_int_equal(cp_pg_exec(db, "ROLLBACK TO cp_job"), PC_OK);
    assert_int_equal(cp_pg_exec(db, "INSERT INTO t(name, n) VALUES ('sp-b', 1)"), PC_OK);
    assert_int_equal(cp_pg_changes(db), 1);
    assert_int_equal(cp_pg_exec(db, "UPDATE t SET n = n WHERE name LIKE 'sp-%'"), PC_OK);
    assert_int_equal(cp_pg_changes(db), 1); /* sp-a was rolled back */
    assert_int_equal(cp_pg_exec(db, "RELEASE cp_job"), PC_OK);
    assert_int_equal(cp_pg_exec(db, "COMMIT"), PC_OK);
    assert_true(cp_pg_autocommit(db));
    st = cp_pg_prepare(db, "SELECT string_agg(name, ',' ORDER BY name) FROM t"
                           " WHERE name LIKE 'sp-%'");
    assert_int_equal(cp_pg_step(st), CP_ROW);
    assert_string_equal(cp_pg_col_text(st, 0), "sp-b");
    cp_pg_finalize(st);
}

/* PostgreSQL aborts a transaction at the first failed statement: a job that goes on anyway
 * fails alone at its RELEASE, and a COMMIT of an aborted transaction is a failure. */
static void test_aborted_transaction_never_reports_a_commit(void **state)
{
    cp_conn *db = *state;
    cp_stmt *st;

    NEED_DB(db);
    assert_int_equal(cp_pg_tx_begin(db), PC_OK);
    assert_int_equal(cp_pg_exec(db, "SAVEPOINT cp_job"), PC_OK);
    assert_int_equal(cp_pg_exec(db, "INSERT INTO t(name, n) VALUES ('ab-keep', 1)"), PC_OK);
    assert_int_equal(cp_pg_exec(db, "RELEASE cp_job"), PC_OK);
    assert_int_equal(cp_pg_exec(db, "SAVEPOINT cp_job"), PC_OK);
    assert_int_equal(cp_pg_exec(db, "INSERT INTO t(name, n) VALUES ('ab-lost', 1)"), PC_OK);
    assert_int_not_equal(cp_pg_exec(db, "INSERT INTO t(name, n) VALUES ('ab-bad', -1)"), PC_OK);
    /* the job ignores that error and releases: refused, its work undone, the rest intact */
    assert_int_not_equal(cp_pg_exec(db, "RELEASE cp_job"), PC_OK);
    assert_false(cp_pg_autocommit(db));
    assert_int_equal(cp_pg_exec(db, "SAVEPOINT cp_job"), PC_OK);
    assert_int_equal(cp_pg_exec(db, "INSERT INTO t(name, n) VALUES ('ab-next', 1)"), PC_OK);
    assert_int_equal(cp_pg_exec(db, "RELEASE cp_job"), PC_OK);
    assert_int_equal(cp_pg_exec(db, "COMMIT"), PC_OK);
    st = cp_pg_prepare(db, "SELECT string_agg(name, ',' ORDER BY name) FROM t"
                           " WHERE name LIKE 'ab-%'");
    assert_int_equal(cp_pg_step(st), CP_ROW);
    assert_string_equal(cp_pg_col_text(st, 0), "ab-keep,ab-next");
    cp_pg_finalize(st);

    assert_int_equal(cp_pg_tx_begin(db), PC_OK);
    assert_int_equal(cp_pg_exec(db, "INSERT INTO t(name, n) VALUES ('ab-gone', 1)"), PC_OK);
    assert_int_not_equal(cp_pg_exec(db, "INSERT INTO t(name, n) VALUES ('ab-bad', -1)"), PC_OK);
    assert_int_not_equal(cp_pg_exec(db, "COMMIT"), PC_OK); /* PostgreSQL said ROLLBACK */
    assert_true(cp_pg_autocommit(db));
    st = cp_pg_prepare(db, "SELECT COUNT(*) FROM t WHERE name = 'ab-gone'");
    assert_int_equal(cp_pg_step(st), CP_ROW);
    assert_int_equal(cp_pg_col_int64(st, 0), 0);
    cp_pg_finalize(st);
}

static void test_connection_killed(void **state)
{
    cp_conn *db = *state;
    cp_stmt *st;

    NEED_DB(db);
    /* outside a transaction: the next statement reconnects */
    assert_int_not_equal(cp_pg_exec(db, "SELECT pg_terminate_backend(pg_backend_pid())"), PC_OK);
    st = cp_pg_prepare(db, "SELECT 7");
    assert_int_equal(cp_pg_step(st), CP_ROW);
    assert_int_equal(cp_pg_col_int64(st, 0), 7);
    cp_pg_finalize(st);
    /* inside one: nothing more runs (no statement of it on its own) until it is ended */
    assert_int_equal(cp_pg_tx_begin(db), PC_OK);
    assert_int_not_equal(cp_pg_exec(db, "SELECT pg_terminate_backend(pg_backend_pid())"), PC_OK);
    assert_false(cp_pg_autocommit(db));
    st = cp_pg_prepare(db, "INSERT INTO t(name, n) VALUES ('lost', 1)");
    assert_int_equal(cp_pg_step(st), CP_ERROR);
    cp_pg_finalize(st);
    assert_int_not_equal(cp_pg_exec(db, "COMMIT"), PC_OK);
    assert_true(cp_pg_autocommit(db));
    assert_int_equal(cp_pg_tx_begin(db), PC_OK);
    assert_int_equal(cp_pg_exec(db, "COMMIT"), PC_OK);
    st = cp_pg_prepare(db, "SELECT COUNT(*) FROM t WHERE name = 'lost'");
    assert_int_equal(cp_pg_step(st), CP_ROW);
    assert_int_equal(cp_pg_col_int64(st, 0), 0);
    cp_pg_finalize(st);
}

int main(void)
{
    const struct CMUnitTest offline[] = {
        cmocka_unit_test(test_connect_error_hides_the_password),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_error_hides_the_password),
        cmocka_unit_test_setup_teardown(test_binds_columns_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_never_quote_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoint_after_error_and_write_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aborted_transaction_never_reports_a_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_connection_killed, setup, teardown),
    };
    /* Without a server (make check) only what needs none runs; the others are not "skipped"
     * here: tests/integration/test_store_flags.py runs this program on a throwaway cluster with
     * PC_TEST_PG_URL set, in every build the integration tests run in. */
    if (!url()) {
        printf("test_sql_pg: PC_TEST_PG_URL unset: the %zu server tests run from "
               "tests/integration/test_store_flags.py\n",
               sizeof tests / sizeof tests[0] - 1);
        return cmocka_run_group_tests(offline, NULL, NULL);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
