/* queue_json.c - a queued message as JSON (jansson) for `interchange queue list --json` and the REST API's queue. */
#include "transport/mta/queue_json.h"

json_t *queue_msg_json(const struct queue_msg *m, long long now, bool full)
{
	json_t *rcpts = json_array();
	for (size_t k = 0; k < m->nrcpts; k++) {
		const struct queue_rcpt *r = &m->rcpts[k];
		json_array_append_new(rcpts,
				      json_pack("{s:s, s:s, s:i, s:I, s:s}", "address", r->addr, "state",
						queue_rcpt_state_name(r, now), "attempts", (int)r->attempts, "next_try",
						(json_int_t)r->next_try, "last_error", r->last_error));
	}
	json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:I, s:o}", "id", m->id, "age", (json_int_t)(now - m->created),
			      "sender", m->sender, "message_id", m->msgid, "size", (json_int_t)m->body.len,
			      "recipients", rcpts);
	if (full) {
		const char *body = m->body.data != NULL ? m->body.data : "";
		size_t len = m->body.len < QUEUE_JSON_BODY_MAX ? m->body.len : QUEUE_JSON_BODY_MAX;
		while (len > 0 && len < m->body.len && ((unsigned char)body[len] & 0xC0) == 0x80)
			len--;                          /* not in the middle of a UTF-8 character */
		json_t *text = json_stringn(body, len); /* NULL: not UTF-8 (8-bit text of another charset) */
		json_object_set_new(o, "submitted_by", json_string(m->auth));
		json_object_set_new(o, "message", text != NULL ? text : json_null());
		json_object_set_new(o, "message_truncated", json_boolean(len < m->body.len || text == NULL));
	}
	return o;
}
