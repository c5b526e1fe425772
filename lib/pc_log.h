/* SPDX-License-Identifier: BSD-2-Clause */
/* Logging for the daemons and CLIs: one line per event, "LEVEL ident: key=value …",
 * to stderr (which systemd sends to the journal). Callers never pass a code, token or seed. */
#ifndef PC_LOG_H
#define PC_LOG_H

enum pc_log_level { PC_LOG_DEBUG = 0, PC_LOG_INFO, PC_LOG_WARN, PC_LOG_ERR };

void pc_log_init(const char *ident, enum pc_log_level min_level);
void pc_log(enum pc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
