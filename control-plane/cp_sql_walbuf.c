/* SPDX-License-Identifier: BSD-2-Clause */
/* The write-ahead log in one write per commit (cp_sql_walbuf.h).
 *
 * SQLite appends a commit to the log a frame at a time, and each frame as two writes: its
 * 24-byte header, then the page. A login changes ~22 pages (begin, its push, the code, their
 * audit rows and indexes): ~45 pwrite(2) calls, each a system call whose entry and exit cost
 * more than its 4 KiB copy on a virtual machine. This VFS sits on top of SQLite's default one
 * and gathers the consecutive writes to a log file in a buffer, which goes to the file in one
 * write when the commit's last frame is complete.
 *
 * Why that is safe: no other connection uses a frame before the commit that contains it is
 * published in the shared wal-index, and SQLite publishes it only after the commit frame's
 * xWrite returned. That xWrite is the one that writes the buffer, so its error (a full disk,
 * an I/O error) is SQLite's error for the commit, exactly as without the buffer, and the
 * commit is not published. Until then the bytes are where the kernel's page cache would have
 * held them: a crash of the process loses an unpublished, unanswered commit either way, and
 * nothing is durable before xSync, which writes the buffer first. Every other operation on a
 * log file (read, sync, size, truncate, close, file control) writes the buffer first, so
 * SQLite never sees the file without its own writes (a long transaction that spills its cache
 * reads its frames back, for instance). Files other than logs are passed through untouched. */
#include "config.h"
#include "cp_sql_walbuf.h"
#include "pc_err.h"
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* A commit larger than this is written in pieces of at most this size. Below 128 KiB: the
 * default VFS writes at most 0x1ffff bytes in one call (seekAndWriteFd masks the length; SQLite
 * itself never writes more than a page at once) and answers a larger write "disk full". */
#define WB_CAP (120 * 1024)
#define WB_FRAME_HDR 24 /* the size of a log frame's header */

struct wb_file {
    sqlite3_file base;  /* pMethods: wb_io */
    sqlite3_file *real; /* the default VFS's file, right after this struct */
    int wal;            /* a log file: its writes are gathered */
    int commit_next;    /* the last write was a commit frame's header: write out after its page */
    unsigned char *buf; /* len bytes to be written at off */
    size_t len;
    sqlite3_int64 off;
};

static sqlite3_vfs wb_vfs, *real_vfs;

static int flush(struct wb_file *f)
{
    int rc;

    if (!f->len)
        return SQLITE_OK;
    rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->off);
    f->len = 0; /* written or failed: SQLite hears of it once, and writes again if it retries */
    return rc;
}

/* A frame header whose second field (the database size after the commit) is not zero. */
static int commit_header(const void *data, int n)
{
    const unsigned char *h = data;
    return n == WB_FRAME_HDR && (h[4] | h[5] | h[6] | h[7]) != 0;
}

static int wb_write(sqlite3_file *p, const void *data, int n, sqlite3_int64 off)
{
    struct wb_file *f = (struct wb_file *)p;
    int rc, flush_after;

    if (!f->wal || n <= 0)
        return f->real->pMethods->xWrite(f->real, data, n, off);
    flush_after = f->commit_next;
    f->commit_next = 0;
    if (f->len && (off != f->off + (sqlite3_int64)f->len || f->len + (size_t)n > WB_CAP) &&
        (rc = flush(f)) != SQLITE_OK)
        return rc;
    if ((size_t)n > WB_CAP || (!f->buf && !(f->buf = malloc(WB_CAP))))
        return f->real->pMethods->xWrite(f->real, data, n, off); /* after what came before */
    if (!f->len)
        f->off = off;
    memcpy(f->buf + f->len, data, (size_t)n);
    f->len += (size_t)n;
    if (flush_after)
        return flush(f);
    f->commit_next = commit_header(data, n);
    return SQLITE_OK;
}

static int wb_close(sqlite3_file *p)
{
    struct wb_file *f = (struct wb_file *)p;
    int rc = flush(f), rc2;

    free(f->buf);
    f->buf = NULL;
    rc2 = f->real->pMethods->xClose(f->real);
    return rc != SQLITE_OK ? rc : rc2;
}

/* The buffer goes first, then the call: SQLite sees the file with all it wrote. */
#define FLUSH_FIRST(f) \
    do { \
        int frc_ = flush(f); \
        if (frc_ != SQLITE_OK) \
            return frc_; \
    } while (0)

static int wb_read(sqlite3_file *p, void *data, int n, sqlite3_int64 off)
{
    struct wb_file *f = (struct wb_file *)p;
    FLUSH_FIRST(f);
    return f->real->pMethods->xRead(f->real, data, n, off);
}

static int wb_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    struct wb_file *f = (struct wb_file *)p;
    FLUSH_FIRST(f);
    return f->real->pMethods->xTruncate(f->real, size);
}

static int wb_sync(sqlite3_file *p, int flags)
{
    struct wb_file *f = (struct wb_file *)p;
    FLUSH_FIRST(f);
    return f->real->pMethods->xSync(f->real, flags);
}

static int wb_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
    struct wb_file *f = (struct wb_file *)p;
    FLUSH_FIRST(f);
    return f->real->pMethods->xFileSize(f->real, size);
}

static int wb_file_control(sqlite3_file *p, int op, void *arg)
{
    struct wb_file *f = (struct wb_file *)p;
    FLUSH_FIRST(f);
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

/* The rest as the default VFS has them. */
static int wb_lock(sqlite3_file *p, int l)
{
    struct wb_file *f = (struct wb_file *)p;
    return f->real->pMethods->xLock(f->real, l);
}

static int wb_unlock(sqlite3_file *p, int l)
{
    struct wb_file *f = (struct wb_file *)p;
    return f->real->pMethods->xUnlock(f->real, l);
}

static int wb_check_reserved(sqlite3_file *p, int *out)
{
    struct wb_file *f = (struct wb_file *)p;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int wb_sector_size(sqlite3_file *p)
{
    struct wb_file *f = (struct wb_file *)p;
    return f->real->pMethods->xSectorSize(f->real);
}

static int wb_device_characteristics(sqlite3_file *p)
{
    struct wb_file *f = (struct wb_file *)p;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int wb_shm_map(sqlite3_file *p, int pg, int pgsz, int extend, void volatile **out)
{
    struct wb_file *f = (struct wb_file *)p;
    return f->real->pMethods->xShmMap(f->real, pg, pgsz, extend, out);
}

static int wb_shm_lock(sqlite3_file *p, int offset, int n, int flags)
{
    struct wb_file *f = (struct wb_file *)p;
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void wb_shm_barrier(sqlite3_file *p)
{
    struct wb_file *f = (struct wb_file *)p;
    f->real->pMethods->xShmBarrier(f->real);
}

static int wb_shm_unmap(sqlite3_file *p, int del)
{
    struct wb_file *f = (struct wb_file *)p;
    return f->real->pMethods->xShmUnmap(f->real, del);
}

static int wb_fetch(sqlite3_file *p, sqlite3_int64 off, int n, void **out)
{
    struct wb_file *f = (struct wb_file *)p;
    FLUSH_FIRST(f);
    return f->real->pMethods->xFetch(f->real, off, n, out);
}

static int wb_unfetch(sqlite3_file *p, sqlite3_int64 off, void *ptr)
{
    struct wb_file *f = (struct wb_file *)p;
    return f->real->pMethods->xUnfetch(f->real, off, ptr);
}

static const sqlite3_io_methods wb_io = {
    3,
    wb_close,
    wb_read,
    wb_write,
    wb_truncate,
    wb_sync,
    wb_file_size,
    wb_lock,
    wb_unlock,
    wb_check_reserved,
    wb_file_control,
    wb_sector_size,
    wb_device_characteristics,
    wb_shm_map,
    wb_shm_lock,
    wb_shm_barrier,
    wb_shm_unmap,
    wb_fetch,
    wb_unfetch,
};

static int wb_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags, int *out_flags)
{
    struct wb_file *f = (struct wb_file *)p;
    int rc;

    (void)vfs;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(void *)(f + 1);
    rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK || !f->real->pMethods) {
        p->pMethods = NULL; /* SQLite then calls no method of this file */
        return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
    }
    if (f->real->pMethods->iVersion < 3) { /* not the default VFS this was written for */
        f->real->pMethods->xClose(f->real);
        p->pMethods = NULL;
        return SQLITE_CANTOPEN;
    }
    f->wal = (flags & SQLITE_OPEN_WAL) != 0;
    p->pMethods = &wb_io;
    return SQLITE_OK;
}

int cp_sql_walbuf_register(void)
{
    if (!(real_vfs = sqlite3_vfs_find(NULL)))
        return PC_ERR_STORE;
    if (real_vfs == &wb_vfs)
        return PC_OK;
    wb_vfs = *real_vfs; /* its other methods and pAppData, which they read */
    wb_vfs.szOsFile = (int)sizeof(struct wb_file) + real_vfs->szOsFile;
    wb_vfs.zName = "portcullis-walbuf";
    wb_vfs.xOpen = wb_open;
    wb_vfs.pNext = NULL;
    return sqlite3_vfs_register(&wb_vfs, 1) == SQLITE_OK ? PC_OK : PC_ERR_STORE;
}
