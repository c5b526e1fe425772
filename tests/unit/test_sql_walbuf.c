/* SPDX-License-Identifier: BSD-2-Clause */
/* Tests of the write-ahead log's write buffer (control-plane/cp_sql_walbuf.c) with real SQLite
 * databases in a temporary directory: it is SQLite's default VFS once registered; a commit is
 * visible to another connection as soon as it returns although nothing syncs (synchronous=OFF:
 * only the buffer's write at the commit frame puts the frames in the file); a commit larger
 * than the buffer; a transaction that spills its cache into the log and reads it back; the
 * database checks whole after all of it, and after a checkpoint. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cp_sql_walbuf.h"
#include "pc_err.h"

struct pair {
    char dir[64], path[96];
    sqlite3 *w, *r; /* the writing and the reading connection */
};

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
}

static int64_t one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void integrity_ok(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;

    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

static int setup(void **state)
{
    struct pair *p = calloc(1, sizeof *p);

    assert_non_null(p);
    snprintf(p->dir, sizeof p->dir, "/tmp/pc-walbuf-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->path, sizeof p->path, "%s/t.db", p->dir);
    assert_int_equal(sqlite3_open(p->path, &p->w), SQLITE_OK);
    /* no sync at all: what another connection sees comes only from the buffer's writes */
    exec_ok(p->w, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
                  " PRAGMA wal_autocheckpoint=0;"
                  " CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, b BLOB);"
                  " CREATE INDEX t_n ON t(n);");
    assert_int_equal(sqlite3_open(p->path, &p->r), SQLITE_OK);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;
    char f[128];

    sqlite3_close(p->r);
    sqlite3_close(p->w);
    unlink(p->path);
    snprintf(f, sizeof f, "%s-wal", p->path);
    unlink(f);
    snprintf(f, sizeof f, "%s-shm", p->path);
    unlink(f);
    rmdir(p->dir);
    free(p);
    return 0;
}

static void test_is_the_default_vfs(void **state)
{
    (void)state;
    assert_non_null(sqlite3_vfs_find(NULL));
    assert_string_equal(sqlite3_vfs_find(NULL)->zName, "portcullis-walbuf");
}

/* Commits of a few pages each (rows, their index, a 3 KB blob): each is read, whole, by the
 * other connection right after the commit returned. */
static void test_each_commit_is_visible_at_once(void **state)
{
    struct pair *p = *state;

    for (int i = 1; i <= 300; i++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "BEGIN; INSERT INTO t(n, b) VALUES (%d, zeroblob(3000));"
                 " INSERT INTO t(n, b) VALUES (%d, randomblob(1000)); COMMIT;",
                 i, -i);
        exec_ok(p->w, sql);
        assert_int_equal(one_int(p->r, "SELECT count(*) FROM t"), 2 * i);
        assert_int_equal(one_int(p->r, "SELECT sum(n) FROM t WHERE n > 0"),
                         (int64_t)i * (i + 1) / 2);
        assert_int_equal(one_int(p->r, "SELECT sum(length(b)) FROM t"), (int64_t)4000 * i);
    }
    integrity_ok(p->r);
    integrity_ok(p->w);
}

/* One commit of ~2.4 MB, twenty times the buffer: written in pieces, read back whole. */
static void test_a_commit_larger_than_the_buffer(void **state)
{
    struct pair *p = *state;

    exec_ok(p->w, "BEGIN; WITH RECURSIVE k(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM k"
                  " WHERE x < 600) INSERT INTO t(n, b) SELECT x, randomblob(4000) FROM k;"
                  " COMMIT;");
    assert_int_equal(one_int(p->r, "SELECT count(*) FROM t"), 600);
    assert_int_equal(one_int(p->r, "SELECT sum(length(b)) FROM t"), (int64_t)600 * 4000);
    integrity_ok(p->r);
}

/* A cache of 10 pages: the transaction writes frames to the log before its commit (a spill)
 * and reads them back through the same file; then the other connection reads the result. */
static void test_a_spilled_transaction_reads_its_frames_back(void **state)
{
    struct pair *p = *state;

    exec_ok(p->w, "PRAGMA cache_size=10; BEGIN;");
    for (int i = 1; i <= 400; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO t(n, b) VALUES (%d, zeroblob(1500))", i);
        exec_ok(p->w, sql);
        if (i % 50 == 0) /* reads pages the spill has put in the log */
            assert_int_equal(one_int(p->w, "SELECT count(*) FROM t WHERE n > 0"), i);
    }
    exec_ok(p->w, "UPDATE t SET n = n + 1000 WHERE n % 7 = 0; COMMIT;");
    assert_int_equal(one_int(p->r, "SELECT count(*) FROM t"), 400);
    assert_int_equal(one_int(p->r, "SELECT count(*) FROM t WHERE n > 1000"), 57);
    integrity_ok(p->r);
}

/* The log copied into the database file, and the log begun again from its start. */
static void test_checkpoint_and_restart(void **state)
{
    struct pair *p = *state;

    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 50; i++)
            exec_ok(p->w, "INSERT INTO t(n, b) VALUES (1, randomblob(2000))");
        exec_ok(p->w, "PRAGMA wal_checkpoint(RESTART)");
        assert_int_equal(one_int(p->r, "SELECT count(*) FROM t"), 50 * (round + 1));
    }
    exec_ok(p->w, "INSERT INTO t(n, b) VALUES (2, randomblob(2000))"); /* the new log's first */
    assert_int_equal(one_int(p->r, "SELECT count(*) FROM t WHERE n = 2"), 1);
    integrity_ok(p->r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_the_default_vfs),
        cmocka_unit_test_setup_teardown(test_each_commit_is_visible_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_commit_larger_than_the_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_spilled_transaction_reads_its_frames_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_and_restart, setup, teardown),
    };

    if (cp_sql_walbuf_register() != PC_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
