# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of issue 13 (logins that survive the control plane), on e2e_ca's
environment (its control plane, agent and sshd with certificates only):
- per-certificate: a `portcullis login` certificate of a person whose rule says
  second_factor per-certificate logs in with no prompt; audit auth.begin allow certificate_2fa;
- the same person's rule changed back to every-login: the code prompt as today.
Hooked into run_e2e.py's TESTS by register()."""
import os

import e2e_ca
import test_agent_ca as ca      # tests/integration: login flow, ssh-keygen helpers

R = None                         # the run_e2e module


def _person(c, who):
    """who, with a key and TOTP, made once per environment."""
    if who not in c.keyfile:
        c.keyfile[who] = os.path.join(c.keys, who)
        _, c.secret[who] = ca.person_with_key(c.d, c.keyfile[who], name=who)
    return who


def _rule(c, who, second_factor):
    """Exactly one rule for who: ubuntu on env=prod with this second_factor."""
    st, b = c.d.admin("GET", "/v1/policies")
    assert st == 200, (st, b)
    for p in b["policies"]:
        if p.get("users") == [who]:
            st, r = c.d.admin("DELETE", "/v1/policies/%d" % p["id"])
            assert st == 200, (st, r)
    ca.add_policy(c.d, "%s-%s" % (who, second_factor), users=[who], accounts=["ubuntu"],
                  hosts={"env": "prod"}, second_factor=second_factor)


def off_per_certificate_login_needs_no_prompt():
    c = e2e_ca.env()
    who = _person(c, "pcoff-dora")
    _rule(c, who, "per-certificate")
    key, cert, serial = e2e_ca.cert_for(who)
    info = ca.cert_info(cert)
    assert "2fa@portcullis" in info, info
    t0 = e2e_ca.audit_mark()
    l = c.login("ubuntu", key)               # no code to type
    R.assert_in(l, " (per-certificate, online)")
    assert not l.prompts, "a prompt although the certificate proves 2FA:\n%s" % l.describe()
    R.expect_rows(e2e_ca.audit(who, t0, "auth."), [("auth.begin", "allow", "certificate_2fa")])


def off_every_login_rule_prompts_with_the_same_certificate():
    c = e2e_ca.env()
    who = _person(c, "pcoff-dora")
    _rule(c, who, "per-certificate")
    key, cert, serial = e2e_ca.cert_for(who)
    _rule(c, who, "every-login")
    t0 = e2e_ca.audit_mark()
    l = c.login("ubuntu", key, codes=[c.next_code(who)])
    R.assert_in(l, " (every-login)")
    assert l.prompts and "code" in l.prompts[0].lower(), l.describe()
    R.expect_rows(e2e_ca.audit(who, t0, "auth."), [("auth.begin", "challenge", None),
                                                   ("auth.totp", "allow", None)])


TESTS = [off_per_certificate_login_needs_no_prompt,
         off_every_login_rule_prompts_with_the_same_certificate]


def register(run_e2e_module):
    """Called by run_e2e.py: returns the tests to append to its TESTS."""
    global R
    R = run_e2e_module
    return list(TESTS)
