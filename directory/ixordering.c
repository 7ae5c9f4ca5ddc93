/* ixordering.c - a slapd module that gives slapd's built-in name attributes an ordering rule, so that clients sort
 * on cn (RFC 2891) without naming caseIgnoreOrderingMatch themselves (docs/directory.md, "Sorting by name").
 *
 * slapd 2.5 defines name, cn and uid in its own code, without ORDERING, and refuses a second definition; the sssvlv
 * overlay sorts only with the attribute type's ordering rule. slapd loads modules before the schema of cn=config,
 * so at load time these built-in types exist and the others do not yet: this module sets caseIgnoreOrderingMatch on
 * each type named in its arguments that exists and has no ordering rule (attribute types defined later with
 * `SUP name` inherit it: sn, givenName, title), and makes the IA5String and telephone number syntaxes compatible
 * with that rule so that our copy of the core schema can name it for mail and telephoneNumber.
 *
 * Loaded into slapd (olcModuleLoad), never linked into our programs. slapd's headers are not installed: the
 * structure below is the start of slapd 2.5's AttributeType, and every type is checked against what slapd itself
 * answers (its name and its supertype) before anything is written; on a mismatch the module refuses to load. */
#include <lber.h>
#include <ldap_schema.h>
#include <stdio.h>
#include <string.h>

struct slap_mr;
struct slap_syntax;

/* the leading members of slapd 2.5's struct AttributeType (servers/slapd/slap.h) */
struct slap_at {
	LDAPAttributeType sat_atype;
	struct berval sat_cname;
	struct slap_at *sat_sup;
	struct slap_at **sat_subtypes;
	struct slap_mr *sat_equality;
	struct slap_mr *sat_approx;
	struct slap_mr *sat_ordering;
	struct slap_mr *sat_substr;
};

/* slapd's own, resolved when slapd loads the module */
extern struct slap_at *at_find(const char *name);
extern struct slap_mr *mr_find(const char *name);
extern struct slap_syntax *syn_find(const char *oid);
extern int mr_make_syntax_compat_with_mr(struct slap_syntax *syn, struct slap_mr *mr);

int init_module(int argc, char *argv[]);

#define ORDERING_RULE "caseIgnoreOrderingMatch"

/* IA5String (mail) and telephone number: values our copy of the core schema gives ORDERING_RULE */
static const char *const compat_syntaxes[] = { "1.3.6.1.4.1.1466.115.121.1.26", "1.3.6.1.4.1.1466.115.121.1.50" };

/* Whether at looks like slapd's definition of name: its canonical name is one of its names, and cn's supertype is
 * name (the layout check: a wrong layout reads neither). */
static int layout_ok(void)
{
	struct slap_at *name = at_find("name"), *cn = at_find("cn");
	return name != NULL && cn != NULL && name->sat_cname.bv_val != NULL &&
	       strcmp(name->sat_cname.bv_val, "name") == 0 && cn->sat_cname.bv_val != NULL &&
	       strcmp(cn->sat_cname.bv_val, "cn") == 0 && cn->sat_sup == name;
}

int init_module(int argc, char *argv[])
{
	struct slap_mr *mr = mr_find(ORDERING_RULE);
	if (mr == NULL || !layout_ok()) {
		fprintf(stderr, "ixordering: this slapd is not the 2.5 this module was made for: not loaded\n");
		return -1;
	}
	for (size_t i = 0; i < sizeof(compat_syntaxes) / sizeof(compat_syntaxes[0]); i++) {
		struct slap_syntax *syn = syn_find(compat_syntaxes[i]);
		if (syn == NULL || mr_make_syntax_compat_with_mr(syn, mr) < 0) {
			fprintf(stderr, "ixordering: cannot make syntax %s compatible with %s\n", compat_syntaxes[i],
				ORDERING_RULE);
			return -1;
		}
	}
	for (int i = 0; i < argc; i++) {
		struct slap_at *at = at_find(argv[i]);
		if (at == NULL || at->sat_ordering != NULL)
			continue;
		at->sat_ordering = mr;
		/* published in the subschema; slapd frees it with the type (ber_memfree) */
		if (at->sat_atype.at_ordering_oid == NULL)
			at->sat_atype.at_ordering_oid = ber_strdup(ORDERING_RULE);
	}
	return 0;
}
