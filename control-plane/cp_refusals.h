/* SPDX-License-Identifier: BSD-2-Clause */
/* Refused unauthenticated requests (a bad enrollment token, a login start for an unknown user or
 * key), per source address (an IPv6 address by its /64), in fixed windows of
 * CP_REFUSAL_WINDOW seconds. The first CP_REFUSAL_AUDITED refusals of an address in a window are
 * audited in full; later ones are only counted in memory, and when the window closes one row
 * (action "refused.summary", reason "N refused from ADDR in WINDOW") sums them up. Past
 * CP_REFUSAL_LIMIT refusals in a window the address is answered 429 before any handler runs,
 * without touching the store, until its window closes.
 *
 * The table lives in this process only: several portcullisd instances serving one database
 * each aggregate and limit the callers they see, so the audit log may hold one summary per
 * instance for the same address and window. */
#ifndef CP_REFUSALS_H
#define CP_REFUSALS_H

#define CP_REFUSAL_WINDOW 60  /* seconds (test builds: PC_TEST_REFUSAL_WINDOW) */
#define CP_REFUSAL_AUDITED 3  /* refusals per address and window audited in full */
#define CP_REFUSAL_LIMIT 100  /* refusals per address and window before 429 */
#define CP_REFUSAL_SLOTS 4096 /* addresses tracked at once; the rest share one slot */

/* 1 when source is over its limit: answer 429 (the attempt is counted). */
int cp_refusal_throttled(const char *source);
/* Records one refusal of source; 1 when it is to be audited in full, 0 when only counted. */
int cp_refusal_note(const char *source);
/* Records one refusal of source that is never audited in full, only summed up: a connection
 * refused at accept, a request without a valid credential (cp_admission.h, cp_server.c). */
void cp_refusal_count(const char *source);
/* The address as counted (IPv4 as is, IPv6 by its /64); a key maps to itself. */
#define CP_REFUSAL_KEY_MAX 64
void cp_refusal_source_key(const char *source, char key[CP_REFUSAL_KEY_MAX]);
/* Writes the summary rows of closed windows and frees their slots (housekeeping thread). */
void cp_refusal_flush(void);

#endif
