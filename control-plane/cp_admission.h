/* SPDX-License-Identifier: BSD-2-Clause */
/* Connection admission: who may hold one of portcullisd's connection slots, and for how long.
 *
 * A connection is "unproven" from accept until a request on it presents a valid credential
 * (host, admin or session token); then it is "proven". Unproven connections are limited per
 * source address (IPv4 address, IPv6 /64: cp_refusal_source_key) and in all, so that the slots
 * above that cap stay for proven connections; a connection over a limit is closed at accept,
 * before any TLS work, and counted in the in-memory refusal summary (cp_refusals.h), never
 * written to the store per connection. An address that proved itself with a host's or the
 * admin's token in the last 10 minutes (a host reconnecting, hosts behind one NAT address) is
 * "known": it is admitted past the
 * overall cap, and its per-address limit is the overall cap instead.
 *
 * Deadlines: from accept, a connection has handshake_s seconds to finish the TLS handshake and
 * send its first request's headers, else a background thread shuts it down. Unproven
 * connections then idle out after anon_idle_s (libmicrohttpd's default timeout), proven ones
 * after idle_s; a suspended long-poll is never timed out by libmicrohttpd (it waits its own
 * ?wait). The state lives in this process only. */
#ifndef CP_ADMISSION_H
#define CP_ADMISSION_H
#include <microhttpd.h>
#include <stddef.h>
#include <sys/socket.h>

struct cp_admission_limits {
    unsigned max_unauth;  /* unproven connections in all */
    unsigned per_address; /* unproven connections from one address */
    unsigned handshake_s; /* accept → first request headers */
    unsigned idle_s;      /* idle limit of proven connections */
};

/* Sets the limits and starts the deadline thread; PC_OK or a negative PC_ERR_*. */
int cp_admission_start(const struct cp_admission_limits *l);
void cp_admission_stop(void);

/* MHD_OPTION_ACCEPT_POLICY_CALLBACK: MHD_NO for a connection over a limit. */
enum MHD_Result cp_admission_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
/* MHD_OPTION_NOTIFY_CONNECTION: counts connections in and out. */
void cp_admission_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe);
/* A request's headers arrived on conn: its handshake deadline no longer applies. */
void cp_admission_request_started(struct MHD_Connection *conn);
/* A request on conn presented a valid credential: conn counts as proven from now on. */
/* vouches: the credential was a host's or the admin's, which makes the address "known"; a user
 * session proves only its own connection (any person could otherwise lift their address past
 * both caps and hold every unproven slot). */
void cp_admission_proven(struct MHD_Connection *conn, int vouches);

/* The numeric address of sa ("unknown" if none) into out. */
void cp_admission_addr_string(const struct sockaddr *sa, char *out, size_t n);

#endif
