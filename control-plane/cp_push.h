/* Push approvals with number matching. pending → approved | denied | expired; final states
 * never change. One push per login transaction. */
#ifndef CP_PUSH_H
#define CP_PUSH_H
#include "cp_tokens.h"
#include "cp_users.h"
#include <json-c/json.h>
#include <stdint.h>

#define CP_PUSH_ID_LEN 32

void cp_push_configure(int64_t ttl);

/* Idempotent per txid. PC_ERR_NOTFOUND (unknown txid), PC_ERR_STATE (transaction finished),
 * PC_ERR_AUTH (push not enabled for this user). */
int cp_push_create(const struct cp_identity *host, const char *source, const char *txid,
                   char push_id[CP_PUSH_ID_LEN + 1], char match[3], int64_t *expires_at);
/* State of a push of this host ("pending", "approved", "denied", "expired"). */
int cp_push_status(const struct cp_identity *host, const char *push_id, char state[16],
                   int64_t *expires_at);
/* Approve (with the match number) or deny. A wrong number denies. PC_ERR_STATE if final. */
int cp_push_decide(const struct cp_who *who, const char *push_id, int approve, const char *match,
                   char state[16]);
int cp_push_list_pending(json_object **out);
/* Marks every overdue pending push expired (audited) and wakes its waiters. */
void cp_push_expire_due(void);

#endif
