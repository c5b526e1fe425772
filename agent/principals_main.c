/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis-principals: sshd's AuthorizedPrincipalsCommand on its own, without the agent's
 * libraries (see agent/ag_principals_cmd.c and portcullis-principals(8)). */
#include "config.h"
#include "ag_principals_cmd.h"

int main(int argc, char **argv)
{
    static char name[] = "portcullis-principals";

    /* argv[0] "principals" would name the agent's subcommand in messages */
    if (argc > 0)
        argv[0] = name;
    return ag_principals_cmd(argc, argv);
}
