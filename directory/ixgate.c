/* ixgate.c - a slapd module that keeps two of slapd's overlays from answering anyone but the administrator, where
 * their answer would tell a user that a hidden recipient exists (docs/directory.md, "Existence of hidden
 * recipients"):
 * - unique checks an add, a modify or a rename before the database checks its access rules, so a user who may not
 *   write an address or a login would learn from "constraint violation" (against "insufficient access") that a
 *   hidden recipient holds it;
 * - dynlist answers a compare on a list itself, without the access rules, so a compare on a hidden list would say
 *   TRUE or FALSE where the database says "no such object".
 * Only the administrator (the rootDN: the interchange command and our services over ldapi) writes the attributes
 * unique keeps unique; every other identity's write of them is refused by the access rules anyway, and the
 * database answers its compares by the rules. So this module, loaded after slapd's unique and dynlist modules and
 * before the databases are configured (cn=module{0}), wraps those handlers: for the rootDN they run as before; for
 * anyone else the overlay passes the operation on untouched. Replication's writes (which unique skips itself) are
 * the rootDN's too. The cost: a user's compare of a dynamic list's member sees its stored members only.
 *
 * Loaded into slapd (olcModuleLoad), never linked into our programs. slapd installs no headers: each overlay is
 * reached through slapd's own overlay_find, and its handlers are found at the places slapd 2.5's BackendInfo keeps
 * them only after the whole start of the structure matches what that overlay sets (its type name, which handlers
 * are set and which are not, each one wrapped set inside the overlay's own module); on any mismatch the module refuses to
 * load, and slapd does not start. */
#include <stdio.h>
#include <string.h>

#include "directory/slapd_module.h"

/* slapd's own, resolved when slapd loads the module */
extern void *overlay_find(const char *name);
extern int be_isroot(void *op);

int init_module(int argc, char *argv[]);

typedef int handler_fn(void *op, void *rs);

/* slapd 2.5's struct BackendInfo as pointer-sized slots: bi_type, then bi_init, bi_config, bi_open, bi_pause,
 * bi_unpause, bi_close, bi_destroy, bi_db_init, bi_db_config, bi_db_open, bi_db_close, bi_db_destroy, bi_op_bind,
 * bi_op_unbind, bi_op_search, bi_op_compare, bi_op_modify, bi_op_modrdn, bi_op_add, bi_op_delete */
enum { SLOT_SEARCH = 15, SLOT_COMPARE, SLOT_MODIFY, SLOT_MODRDN, SLOT_ADD, SLOT_DELETE, SLOTS };
#define SLAP_CB_CONTINUE 0x8000

/* the handlers wrapped, by slot; the originals in orig */
static handler_fn *orig[SLOTS];

#define GATE(slot)                                                            \
	static int gate_##slot(void *op, void *rs)                            \
	{                                                                     \
		return be_isroot(op) ? orig[slot](op, rs) : SLAP_CB_CONTINUE; \
	}
GATE(SLOT_COMPARE)
GATE(SLOT_MODIFY)
GATE(SLOT_MODRDN)
GATE(SLOT_ADD)

static handler_fn *const gates[SLOTS] = {
	[SLOT_COMPARE] = gate_SLOT_COMPARE,
	[SLOT_MODIFY] = gate_SLOT_MODIFY,
	[SLOT_MODRDN] = gate_SLOT_MODRDN,
	[SLOT_ADD] = gate_SLOT_ADD,
};

/* Each overlay: its name, the slots up to bi_op_delete it sets in slapd 2.5.13 (every other one is NULL), and the
 * slots wrapped. */
static const struct {
	const char *name;
	int set[8], wrapped[4];
} overlays[] = {
	{ "unique", { 8, 12, SLOT_MODIFY, SLOT_MODRDN, SLOT_ADD }, { SLOT_MODIFY, SLOT_MODRDN, SLOT_ADD } },
	{ "dynlist", { 8, 9, 10, 12, SLOT_SEARCH, SLOT_COMPARE }, { SLOT_COMPARE } },
};

static int listed(const int *slots, size_t n, int slot)
{
	for (size_t i = 0; i < n && slots[i] != 0; i++)
		if (slots[i] == slot)
			return 1;
	return 0;
}

int init_module(int argc, char *argv[])
{
	(void)argc;
	(void)argv;
	for (size_t o = 0; o < sizeof(overlays) / sizeof(overlays[0]); o++) {
		const char *name = overlays[o].name;
		void **slot = overlay_find(name);
		if (slot == NULL) {
			fprintf(stderr, "ixgate: slapd's %s module is not loaded (load it before this one)\n", name);
			return -1;
		}
		int w0 = overlays[o].wrapped[0];
		if (slot[w0] == (void *)gates[w0]) /* loaded twice */
			continue;
		if (slot[0] == NULL || strcmp(slot[0], name) != 0) {
			fprintf(stderr, "ixgate: the %s overlay does not look like slapd 2.5's\n", name);
			return -1;
		}
		for (int i = 1; i < SLOTS; i++) {
			int set = listed(overlays[o].set, 8, i);
			if ((slot[i] != NULL) != set ||
			    (listed(overlays[o].wrapped, 4, i) && !slapd_module_has(slot[i], name))) {
				fprintf(stderr,
					"ixgate: the %s overlay's handlers are not where slapd 2.5 keeps them (slot %d "
					"%s)\n",
					name, i, slot[i] != NULL ? "set" : "empty");
				return -1;
			}
		}
	}
	for (size_t o = 0; o < sizeof(overlays) / sizeof(overlays[0]); o++) {
		void **slot = overlay_find(overlays[o].name);
		for (size_t i = 0; i < 4 && overlays[o].wrapped[i] != 0; i++) {
			int s = overlays[o].wrapped[i];
			if (slot[s] == (void *)gates[s])
				continue;
			orig[s] = (handler_fn *)slot[s];
			slot[s] = (void *)gates[s];
		}
	}
	return 0;
}
