/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pc_valid.h"
#include <string.h>

static int alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int pc_valid_hostname(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > PC_HOSTNAME_MAX)
        return 0;
    for (; *s; s++)
        if (!alnum(*s) && *s != '-' && *s != '.' && *s != '_')
            return 0;
    return 1;
}

int pc_valid_bearer_token(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > PC_BEARER_TOKEN_MAX)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

int pc_valid_hex(const char *s, size_t min, size_t max)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (i >= max || !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i >= min;
}

int pc_valid_principal(const char *s, size_t len)
{
    if (len == 0 || len > PC_PRINCIPAL_MAX || s[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!alnum(s[i]) && !(s[i] != '\0' && strchr("._@+$:-", s[i])))
            return 0;
    return 1;
}
