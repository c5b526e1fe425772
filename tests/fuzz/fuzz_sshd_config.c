/* SPDX-License-Identifier: BSD-2-Clause */
/* The sshd_config reader (lib/pc_sshd_config.c): the input is ROOT/etc/ssh/sshd_config in a
 * private directory that also holds an included file, so Include, Match scope and the queries
 * the agent's configure step makes are all reached. Inputs naming ".." are only split into
 * words, not loaded: Include would then read the machine's own files. */
#include "config.h"
#include "fuzz.h"
#include "pc_err.h"
#include "pc_sshd_config.h"
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void cleanup(void)
{
    if (root[0])
        nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void put(const char *rel, const void *data, size_t size)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s%s", root, rel);
    if (!(f = fopen(path, "wb")) || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort();
}

static void setup(void)
{
    static const char inc[] = "PasswordAuthentication no\nMatch User backup\n"
                              "  PubkeyAuthentication yes\n  AuthorizedKeysFile none\n";
    const char *tmp = getenv("TMPDIR");
    char dir[256];

    snprintf(root, sizeof root, "%s/pc-fuzz-sshd.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root))
        abort();
    atexit(cleanup);
    snprintf(dir, sizeof dir, "%s/etc", root);
    mkdir(dir, 0700);
    snprintf(dir, sizeof dir, "%s/etc/ssh", root);
    mkdir(dir, 0700);
    snprintf(dir, sizeof dir, "%s/etc/ssh/sshd_config.d", root);
    mkdir(dir, 0700);
    put("/etc/ssh/sshd_config.d/10-portcullis.conf", inc, sizeof inc - 1);
}

static void query(const struct pc_sshd_config *c)
{
    static const char *const kws[] = { "authenticationmethods",
                                       "kbdinteractiveauthentication",
                                       "usepam",
                                       "trustedusercakeys",
                                       "revokedkeys",
                                       "match",
                                       "include",
                                       "authorizedprincipalsfile" };
    char small[16], big[PC_SSHD_MAX_LINE];

    for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++) {
        const struct pc_sshd_directive *d = pc_sshd_config_global(c, kws[i]);
        size_t pos = 0;
        if (d)
            (void)pc_sshd_directive_value(d, small, sizeof small);
        while ((d = pc_sshd_config_next(c, kws[i], &pos)) != NULL)
            (void)pc_sshd_directive_value(d, big, sizeof big);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pc_sshd_config c;
    char err[512], *s = fuzz_cstr(data, size), **argv = NULL;
    size_t argc = 0;
    int major, minor;

    if (!root[0])
        setup();
    if (pc_sshd_split_args(s, &argv, &argc) == PC_OK)
        pc_sshd_free_args(argv, argc);
    (void)pc_sshd_parse_version(s, &major, &minor);
    free(s);
    if (size > 0 && memmem(data, size, "..", 2))
        return 0;
    put("/etc/ssh/sshd_config", data, size);
    if (pc_sshd_config_load(&c, root, "/etc/ssh/sshd_config", err, sizeof err) == PC_OK) {
        query(&c);
        pc_sshd_config_free(&c);
    }
    return 0;
}
