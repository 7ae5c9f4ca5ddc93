/* dir_hash.c - the replica's hash maps: open addressing with linear probing and backward-shift deletion
 * (no tombstones), keys are byte strings owned by the entries they map to. */
#include "directory/dir_private.h"

#include <stdlib.h>
#include <string.h>
#include "common/util.h"

#define DIR_MAP_MIN_CAP 16

uint64_t dir_hash(const void *key, size_t len)
{
	/* Eight bytes at a time: each word is mixed in with a multiply and a shift, then a final avalanche, so the
	 * low bits used for the slot index depend on every byte. Keys are short (addresses, DNs, UUIDs). */
	const unsigned char *p = key;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)len;
	uint64_t w;
	while (len >= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
		p += 8;
		len -= 8;
	}
	w = 0;
	for (size_t i = 0; i < len; i++)
		w |= (uint64_t)p[i] << (8 * i);
	h = (h ^ w) * 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

void dir_map_init(struct dir_map *m)
{
	m->slots = NULL;
	m->cap = 0;
	m->count = 0;
}

void dir_map_free(struct dir_map *m)
{
	free(m->slots);
	dir_map_init(m);
}

static size_t find_slot(const struct dir_map *m, uint64_t h, const void *key, size_t len, bool *found_r)
{
	size_t mask = m->cap - 1;
	size_t i = (size_t)h & mask;
	for (;;) {
		const struct dir_slot *s = &m->slots[i];
		if (s->key == NULL) {
			*found_r = false;
			return i;
		}
		if (s->hash == h && s->len == len && memcmp(len <= DIR_SLOT_INLINE ? s->inl : s->key, key, len) == 0) {
			*found_r = true;
			return i;
		}
		i = (i + 1) & mask;
	}
}

struct dir_entry *dir_map_get_hashed(const struct dir_map *m, uint64_t hash, const void *key, size_t len)
{
	if (m->count == 0)
		return NULL;
	bool found;
	size_t i = find_slot(m, hash, key, len, &found);
	return found ? m->slots[i].val : NULL;
}

struct dir_entry *dir_map_get(const struct dir_map *m, const void *key, size_t len)
{
	return dir_map_get_hashed(m, dir_hash(key, len), key, len);
}

static void grow(struct dir_map *m)
{
	size_t ncap = m->cap == 0 ? DIR_MAP_MIN_CAP : m->cap * 2;
	if (ncap == 0 || ncap > SIZE_MAX / sizeof(struct dir_slot))
		panic("dir_map: capacity overflow");
	struct dir_slot *old = m->slots;
	size_t ocap = m->cap;
	m->slots = aligned_alloc(sizeof(struct dir_slot), ncap * sizeof(*m->slots));
	if (m->slots == NULL)
		fatal("out of memory for a directory map of %zu slots", ncap);
	memset(m->slots, 0, ncap * sizeof(*m->slots));
	m->cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].key == NULL)
			continue;
		bool found;
		size_t j = find_slot(m, old[i].hash, old[i].key, old[i].len, &found);
		m->slots[j] = old[i];
	}
	free(old);
}

struct dir_entry *dir_map_add(struct dir_map *m, const void *key, size_t len, struct dir_entry *val)
{
	/* Keep the load at or below 5/8 so that probes stay short. */
	if ((m->count + 1) * 8 > m->cap * 5)
		grow(m);
	uint64_t h = dir_hash(key, len);
	bool found;
	size_t i = find_slot(m, h, key, len, &found);
	if (found)
		return m->slots[i].val;
	if (len > UINT32_MAX)
		panic("dir_map: key of %zu bytes", len);
	m->slots[i].hash = h;
	m->slots[i].key = key;
	m->slots[i].len = (uint32_t)len;
	m->slots[i].val = val;
	memcpy(m->slots[i].inl, key, len <= DIR_SLOT_INLINE ? len : DIR_SLOT_INLINE);
	m->count++;
	return NULL;
}

bool dir_map_del(struct dir_map *m, const void *key, size_t len, const struct dir_entry *val)
{
	if (m->count == 0)
		return false;
	bool found;
	size_t i = find_slot(m, dir_hash(key, len), key, len, &found);
	if (!found || (val != NULL && m->slots[i].val != val))
		return false;
	/* Backward-shift: move later members of the probe run into the hole when their home allows it. */
	size_t mask = m->cap - 1;
	size_t hole = i;
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		struct dir_slot *s = &m->slots[j];
		if (s->key == NULL)
			break;
		size_t home = (size_t)s->hash & mask;
		/* s may move to hole when home is not cyclically within (hole, j]. */
		bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
		if (!between) {
			m->slots[hole] = *s;
			hole = j;
		}
	}
	memset(&m->slots[hole], 0, sizeof(m->slots[hole]));
	m->count--;
	return true;
}
