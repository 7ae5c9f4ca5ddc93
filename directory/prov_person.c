/* prov_person.c - the details address books show about a person (title, department, company, office, telephone
 * numbers, manager, photo), written by `interchange user set` and `user photo` and shown by `user show`. */
#include "directory/provision.h"
#include "common/err.h"
#include "common/util.h"
#include "directory/ldap_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* The fields of struct prov_person in order, with the attribute each is kept in and the label user show gives it. */
static const struct {
	const char *attr, *label;
} fields[] = {
	{ "title", "Title:" },           { "department", "Department:" },
	{ "company", "Company:" },       { "physicalDeliveryOfficeName", "Office:" },
	{ "telephoneNumber", "Phone:" }, { "mobile", "Mobile:" },
	{ "manager", "Manager:" },
};
#define FIELD_MANAGER 6

/* The values of d in the order of fields. */
static void person_values(const struct prov_person *d, const char *v[IX_ARRAY_LEN(fields)])
{
	v[0] = d->title;
	v[1] = d->department;
	v[2] = d->company;
	v[3] = d->office;
	v[4] = d->phone;
	v[5] = d->mobile;
	v[6] = d->manager;
}

/* A telephone number as people type it: digits, spaces and + ( ) - . /, with at least one digit (the Telephone
 * Number syntax takes nothing else). */
static int phone_valid(const char *s)
{
	size_t len = strlen(s);
	return len > 0 && len <= PROV_MAX_PHONE && strspn(s, "0123456789 +()-./") == len &&
	       strpbrk(s, "0123456789") != NULL;
}

/* The user entry of login (a new string), or NULL with a sentence. */
static char *user_entry(struct prov *p, const char *login, struct buf *error_r)
{
	if (!prov_login_valid(login)) {
		buf_printf(error_r, "\"%s\" is not a valid login", login);
		return NULL;
	}
	char *dn = prov_user_dn(p, login);
	if (!ldapu_entry_matches(prov_ldap(p), dn, "(objectClass=ixMailUser)")) {
		buf_printf(error_r, "there is no user with login %s: see 'interchange user list'", login);
		free(dn);
		return NULL;
	}
	return dn;
}

/* Adds objectClass oc to the mods when the entry at dn does not have it yet. */
static void need_class(struct prov *p, const char *dn, const char *oc, LDAPMod ***mods, size_t *n)
{
	char *filter = xasprintf("(objectClass=%s)", oc);
	if (!ldapu_entry_matches(prov_ldap(p), dn, filter))
		ldapu_mod_add(mods, n, LDAP_MOD_ADD, "objectClass", ldapu_values1(oc));
	free(filter);
}

/* Changes the entry dn of user login by mods; a failure is "could not change WHAT of LOGIN: REASON". */
static int change_user(struct prov *p, const char *dn, LDAPMod **mods, const char *what, const char *login,
		       struct buf *error_r)
{
	struct buf why = BUF_INIT;
	int ret = ldapu_modify(prov_ldap(p), dn, mods, &why);
	if (ret != IX_OK)
		buf_printf(error_r, "could not change %s of %s: %s", what, login,
			   ret == IX_ENOTFOUND ? "the user no longer exists" : buf_cstr(&why));
	buf_free(&why);
	return ret;
}

int prov_user_set(struct prov *p, const char *login, const struct prov_person *d, struct buf *error_r)
{
	const char *v[IX_ARRAY_LEN(fields)];
	person_values(d, v);
	for (size_t i = 0; i < IX_ARRAY_LEN(fields); i++) {
		if (v[i] == NULL || v[i][0] == '\0' || i == FIELD_MANAGER)
			continue;
		if ((strcmp(fields[i].attr, "telephoneNumber") == 0 || strcmp(fields[i].attr, "mobile") == 0) &&
		    !phone_valid(v[i])) {
			buf_printf(error_r,
				   "\"%s\" is not a telephone number: use digits, spaces and + ( ) - . / (at most %d "
				   "characters)",
				   v[i], PROV_MAX_PHONE);
			return IX_EINVAL;
		}
		if (!prov_name_valid(v[i])) {
			buf_printf(error_r,
				   "the %s must be 1-%d characters without control characters or leading or trailing "
				   "spaces (\"\" removes it)",
				   fields[i].label, PROV_MAX_NAME);
			return IX_EINVAL;
		}
	}
	char *dn = user_entry(p, login, error_r);
	if (dn == NULL)
		return IX_ENOTFOUND;
	char *manager_dn = NULL;
	if (v[FIELD_MANAGER] != NULL && v[FIELD_MANAGER][0] != '\0') {
		if (strcasecmp(v[FIELD_MANAGER], login) == 0) {
			buf_printf(error_r, "%s cannot be its own manager", login);
			free(dn);
			return IX_EINVAL;
		}
		struct buf why = BUF_INIT;
		manager_dn = user_entry(p, v[FIELD_MANAGER], &why);
		if (manager_dn == NULL) {
			buf_printf(error_r, "the manager: %s", buf_cstr(&why));
			buf_free(&why);
			free(dn);
			return IX_ENOTFOUND;
		}
		buf_free(&why);
	}
	LDAPMod **mods = NULL;
	size_t n = 0;
	if ((v[1] != NULL && v[1][0] != '\0') || (v[2] != NULL && v[2][0] != '\0'))
		need_class(p, dn, "ixPersonDetails", &mods, &n);
	for (size_t i = 0; i < IX_ARRAY_LEN(fields); i++) {
		if (v[i] == NULL)
			continue;
		/* a replace with no value removes the attribute, and is no error when it is absent */
		const char *value = i == FIELD_MANAGER ? manager_dn : v[i];
		ldapu_mod_add(&mods, &n, LDAP_MOD_REPLACE, fields[i].attr,
			      value != NULL && value[0] != '\0' ? ldapu_values1(value) : NULL);
	}
	free(manager_dn);
	int ret = IX_OK;
	if (n == 0) {
		buf_append_str(error_r, "user set needs at least one of --title, --department, --company, --office, "
					"--phone, --mobile, --manager");
		ret = IX_EINVAL;
	} else {
		ret = change_user(p, dn, mods, "the details", login, error_r);
	}
	ldapu_mods_free(mods);
	free(dn);
	return ret;
}

int prov_user_photo(struct prov *p, const char *login, const char *path, struct buf *out, struct buf *error_r)
{
	char *data = NULL;
	size_t len = 0;
	if (path != NULL) {
		struct stat st;
		if (stat(path, &st) < 0 || read_file(path, PROV_MAX_PHOTO_FILE, &data, &len) < 0) {
			if (errno == EFBIG || (S_ISREG(st.st_mode) && st.st_size > PROV_MAX_PHOTO_FILE))
				buf_printf(error_r,
					   "%s is %lld KiB, more than the %d MiB a photo may be before it is made "
					   "smaller: use a smaller image",
					   path, (long long)(st.st_size + 1023) / 1024, PROV_MAX_PHOTO_FILE >> 20);
			else
				buf_printf(error_r, "cannot read %s: %s", path, strerror(errno));
			return IX_EINVAL;
		}
	}
	int ret = prov_user_photo_data(p, login, path, data, len, out, error_r);
	free(data);
	return ret;
}

int prov_user_photo_data(struct prov *p, const char *login, const char *what, const void *in, size_t in_len,
			 struct buf *out, struct buf *error_r)
{
	char *data = NULL;
	size_t len = in_len;
	if (in != NULL) {
		if (len > PROV_MAX_PHOTO_FILE) {
			buf_printf(
				error_r,
				"%s is %zu KiB, more than the %d MiB a photo may be before it is made smaller: use a "
				"smaller image",
				what, (len + 1023) / 1024, PROV_MAX_PHOTO_FILE >> 20);
			return IX_EINVAL;
		}
		data = xmalloc(len + 1);
		memcpy(data, in, len);
		/* a JPEG starts with SOI and a marker (FF D8 FF) and ends with EOI (FF D9) */
		const unsigned char *u = (const unsigned char *)data;
		if (len < 4 || u[0] != 0xff || u[1] != 0xd8 || u[2] != 0xff || u[len - 2] != 0xff ||
		    u[len - 1] != 0xd9) {
			buf_printf(error_r, "%s is not a JPEG image: address books show photos in JPEG only", what);
			free(data);
			return IX_EINVAL;
		}
		if (len > PROV_MAX_PHOTO) {
			unsigned char *small = NULL;
			size_t small_len = 0;
			struct buf why = BUF_INIT;
			int ret = prov_photo_fit(u, len, &small, &small_len, out, &why);
			free(data);
			if (ret != IX_OK) {
				buf_printf(error_r, "%s is %zu KiB, larger than the %d KiB address books take, and %s",
					   what, (len + 1023) / 1024, PROV_MAX_PHOTO / 1024, buf_cstr(&why));
				buf_free(&why);
				return ret;
			}
			buf_free(&why);
			data = (char *)small;
			len = small_len;
		}
	}
	char *dn = user_entry(p, login, error_r);
	if (dn == NULL) {
		free(data);
		return IX_ENOTFOUND;
	}
	/* the same JPEG in both: Outlook and Active Directory clients read thumbnailPhoto, inetOrgPerson clients
	 * (Thunderbird, Evolution, macOS Contacts) jpegPhoto */
	struct berval photo = { len, data };
	struct berval *bv[] = { &photo, NULL };
	char *oc[] = { (char *)"ixPersonPhoto", NULL };
	LDAPMod m_oc = { .mod_op = LDAP_MOD_ADD, .mod_type = (char *)"objectClass", .mod_values = oc };
	LDAPMod m_thumb = { .mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES,
			    .mod_type = (char *)"thumbnailPhoto",
			    .mod_bvalues = data != NULL ? bv : NULL };
	LDAPMod m_jpeg = { .mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES,
			   .mod_type = (char *)"jpegPhoto",
			   .mod_bvalues = data != NULL ? bv : NULL };
	LDAPMod *mods[4];
	size_t n = 0;
	if (data != NULL && !ldapu_entry_matches(prov_ldap(p), dn, "(objectClass=ixPersonPhoto)"))
		mods[n++] = &m_oc;
	if (data != NULL || ldapu_entry_matches(prov_ldap(p), dn, "(objectClass=ixPersonPhoto)"))
		mods[n++] = &m_thumb;
	mods[n++] = &m_jpeg;
	mods[n] = NULL;
	int ret = change_user(p, dn, mods, "the photo", login, error_r);
	free(dn);
	free(data);
	return ret;
}

void prov_person_show(struct prov *p, LDAPMessage *e, struct buf *out)
{
	LDAP *ld = prov_ldap(p);
	for (size_t i = 0; i < IX_ARRAY_LEN(fields); i++) {
		char *v = ldapu_get_first(ld, e, fields[i].attr);
		if (v == NULL)
			continue;
		char *shown = i == FIELD_MANAGER ? prov_rdn_value(v)
						 : NULL; /* the manager's login, as user set takes it */
		buf_printf(out, "%-14s%s\n", fields[i].label, shown != NULL ? shown : v);
		free(shown);
		free(v);
	}
	char **reports = ldapu_get_values(ld, e, "directReports", NULL);
	for (size_t i = 0; reports[i] != NULL; i++) {
		char *uid = prov_rdn_value(reports[i]);
		buf_printf(out, "%-14s%s\n", i == 0 ? "Reports:" : "", uid);
		free(uid);
	}
	ldapu_values_free(&reports);
	struct berval **photo = ldap_get_values_len(ld, e, "thumbnailPhoto");
	if (photo == NULL || photo[0] == NULL) {
		ldap_value_free_len(photo);
		photo = ldap_get_values_len(ld, e, "jpegPhoto");
	}
	if (photo != NULL && photo[0] != NULL)
		buf_printf(out, "%-14sJPEG, %lu bytes\n", "Photo:", (unsigned long)photo[0]->bv_len);
	ldap_value_free_len(photo);
}
