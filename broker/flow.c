/*
 * Per-connection send queues counted in bytes, and the not_reading
 * refusal.  The rules are in flow.h; sessions.c does the sending.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "flow.h"

/*
 * One result of an acks at its largest: an error with every key, the
 * longest echoed event_id, field and message (struct rl_error) and a name.
 */
#define ACK_RESULT_MAX \
	(16 + 2 + 9 + 9 + 2 + RL_MAX_ID_BYTES + 7 + 6 + 5 + 9 + 6 + 24 + \
	 6 + 34 + 8 + 162)
#define ACKS_HEAD_MAX 64

uint64_t
flow_connections(const struct flow_totals *t)
{
	uint64_t gone = t->closed > t->failed ? t->closed - t->failed : 0;

	return t->admitted > gone ? t->admitted - gone : 0;
}

size_t
flow_acks_max(uint32_t nevents)
{
	return ACKS_HEAD_MAX + (size_t)nevents * ACK_RESULT_MAX;
}

bool
flow_room(const struct flow_totals *t, const struct conn_flow *f, size_t n)
{
	return f->queued + f->reserved + n <= FLOW_CONN_QUEUE_MAX &&
	    t->queued + t->reserved + n <= FLOW_QUEUE_MAX;
}

bool
flow_reserve(struct flow_totals *t, struct conn_flow *f, size_t n)
{
	if (flow_refusing(f) || !flow_room(t, f, n))
		return false;
	f->reserved += n;
	t->reserved += n;
	return true;
}

void
flow_release(struct flow_totals *t, struct conn_flow *f, size_t n)
{
	n = n < f->reserved ? n : f->reserved;
	f->reserved -= n;
	t->reserved -= n < t->reserved ? n : t->reserved;
}

void
flow_refuse(struct flow_totals *t, struct conn_flow *f, bool has_ref,
    uint64_t ref)
{
	if (f->refused++ == 0) {
		t->refusing++;
		f->first_has_ref = has_ref;
		f->first_ref = ref;
	}
	f->last_has_ref = has_ref;
	f->last_ref = ref;
	t->refused++;
}

bool
flow_refusing(const struct conn_flow *f)
{
	return f->refused > 0;
}

int
flow_enqueue(struct flow_totals *t, struct conn_flow *f, const void *buf,
    size_t len)
{
	struct flow_msg *m = malloc(sizeof(*m) + len);

	if (m == NULL)
		return -1;
	m->next = NULL;
	m->len = len;
	memcpy(m->data, buf, len);
	if (f->tail != NULL)
		f->tail->next = m;
	else
		f->head = m;
	f->tail = m;
	/* Its header too: a flood of small replies costs what it holds. */
	f->queued += sizeof(*m) + len;
	t->queued += sizeof(*m) + len;
	return 0;
}

const struct flow_msg *
flow_peek(const struct conn_flow *f)
{
	return f->head;
}

void
flow_dequeue(struct flow_totals *t, struct conn_flow *f)
{
	struct flow_msg *m = f->head;

	if (m == NULL)
		return;
	f->head = m->next;
	if (f->head == NULL)
		f->tail = NULL;
	f->queued -= sizeof(*m) + m->len;
	t->queued -= sizeof(*m) + m->len;
	free(m);
}

void
flow_pack_notice(const struct conn_flow *f, msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	char msg[160];

	snprintf(msg, sizeof(msg), "%llu requests were refused and not done: "
	    "this connection did not read its replies; read them, then send "
	    "those requests again", (unsigned long long)f->refused);
	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	codec_begin_reply(&pk, "error", 5 + f->first_has_ref + f->last_has_ref);
	if (f->first_has_ref)
		codec_pack_kv_u64(&pk, "ref", f->first_ref);
	if (f->last_has_ref)
		codec_pack_kv_u64(&pk, "last_ref", f->last_ref);
	codec_pack_kv_u64(&pk, "refused", f->refused);
	codec_pack_kv_u64(&pk, "code", RL_E_NOT_READING);
	codec_pack_kv_str(&pk, "error", rl_code_name(RL_E_NOT_READING));
	codec_pack_kv_str(&pk, "field", "");
	codec_pack_kv_str(&pk, "message", msg);
}

void
flow_noticed(struct flow_totals *t, struct conn_flow *f)
{
	if (f->refused > 0 && t->refusing > 0)
		t->refusing--;
	f->refused = 0;
	f->first_has_ref = f->last_has_ref = false;
	f->first_ref = f->last_ref = 0;
}

void
flow_clear(struct flow_totals *t, struct conn_flow *f)
{
	while (f->head != NULL)
		flow_dequeue(t, f);
	flow_release(t, f, f->reserved);
	flow_noticed(t, f);
}
