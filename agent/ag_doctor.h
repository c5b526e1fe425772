/* SPDX-License-Identifier: BSD-2-Clause */
/* portcullis-agent doctor: checks this server's whole Portcullis setup (sshd's effective
 * configuration, the principals command's path, the PAM stack, the agent, the control plane
 * and its pin, the clock, the host certificate, the KRL). Each problem has a code, a one-line
 * explanation and the fix; see portcullis-agent(8), DOCTOR. */
#ifndef AG_DOCTOR_H
#define AG_DOCTOR_H

/* argv[0] is "doctor". Returns the exit status: 0 all checks pass, 1 a problem, 2 usage. */
int ag_doctor_main(int argc, char **argv);

#endif
