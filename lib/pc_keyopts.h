/* SPDX-License-Identifier: BSD-2-Clause */
/* The key options of one AuthorizedPrincipalsCommand line (sshd(8), AUTHORIZED_KEYS FILE
 * FORMAT): what a login may do on this host, from the rules that matched here. Only a fixed set
 * is ever written — restrict, then what the rule re-enables (X11-forwarding, agent-forwarding,
 * port-forwarding, pty, user-rc), from="…" and command="…" — each value checked so it cannot
 * leave its quotes. sshd ANDs these with the certificate's extensions, so `restrict` makes this
 * host's rule decide even though the certificate carries the union of a person's rules. */
#ifndef PC_KEYOPTS_H
#define PC_KEYOPTS_H
#include <json-c/json.h>
#include <stddef.h>

#define PC_KEYOPTS_VALUE_MAX 1024
/* restrict + 5 flags + from="…" + command="…" */
#define PC_KEYOPTS_LINE_MAX (96 + 2 * (PC_KEYOPTS_VALUE_MAX + 16))

/* A from= value: 1..PC_KEYOPTS_VALUE_MAX bytes of [0-9A-Fa-f.:/,] (addresses and CIDRs). */
int pc_keyopts_from_ok(const char *s);
/* A command= value: 1..PC_KEYOPTS_VALUE_MAX bytes of printable ASCII (0x20..0x7e) without '"'
 * or '\' (sshd reads \" as a quote inside the value, so a trailing '\' would eat the end quote)
 * or '#' (sshd cuts each line of the principals command's output at its first '#', quotes or
 * not: the line would lose its end quote and every login under the rule would be refused). */
int pc_keyopts_command_ok(const char *s);
/* opts is {"extensions": [permit-…], "source_address"?: S, "force_command"?: S} and nothing
 * else (the rule's vocabulary, as GET /v1/hosts/self/principals sends it). Writes
 * "restrict[,X11-forwarding][,agent-forwarding][,port-forwarding][,pty][,user-rc]
 * [,from=\"S\"][,command=\"S\"]" to out. PC_OK, or PC_ERR_PARSE for anything else (an unknown
 * field or extension, a value that fails the checks above), PC_ERR_TOOBIG if out is too small. */
int pc_keyopts_build(json_object *opts, char *out, size_t outsz);

#endif
