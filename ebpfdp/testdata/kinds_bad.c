// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Copyright The p4tcd Authors. */

/*
 * kinds_bad: the kinds tables with a program the verifier rejects (it
 * reads the packet without a bounds check), for testing that Verify
 * reports the verifier's words.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "kinds_tables.h"
#include <p4tc_runtime.h>

SEC("tc")
int kinds_bad(struct __sk_buff *skb)
{
	struct kinds_two_lpm_key k = {0};
	struct p4tc_table_entry_act_bpf_params p = {.tblid = KINDS_TWO_LPM_TBLID};
	__u8 *data = (void *)(long)skb->data;

	k.keysz = 64;
	k.src = *(__be32 *)(data + 26); /* no check against data_end */
	return bpf_p4tc_tbl_read(skb, &p, sizeof(p), &k, sizeof(k)) ? TC_ACT_OK : TC_ACT_SHOT;
}

char _license[] SEC("license") = "Dual BSD/GPL";
