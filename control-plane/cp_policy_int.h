/* SPDX-License-Identifier: BSD-2-Clause */
/* Private to the access policy: what cp_policy_rules.c (checking and storing rules) and
 * cp_policy_match.c (evaluating them) share. Defined in cp_policy_rules.c. */
#ifndef CP_POLICY_INT_H
#define CP_POLICY_INT_H
#include "cp_policy.h"
#include "cp_sql.h"
#include <json-c/json.h>

/* The extensions a rule may grant, in byte order, as certificates want them. */
extern const char *const cp_policy_known_ext[CP_POLICY_EXT_MAX];

/* Every stored policy as parsed objects with "id". */
int cp_policy_load_all(cp_conn *db, json_object **out);

#endif
