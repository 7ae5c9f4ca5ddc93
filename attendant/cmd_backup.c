/* cmd_backup.c - interchange backup DEST and interchange restore SRC: a consistent online backup of one
 * server (the directory as LDIF from slapcat, the queue's files, the store as an LMDB hot copy, the bootstrap
 * config and certificate) with a manifest of checksums, and its restore into a fresh data folder. */
#include "attendant/bootstrap.h"
#include "attendant/cli.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/privs.h"
#include "directory/slapd.h"
#include "transport/mta/queue.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BACKUP_FORMAT 1
#define BACKUP_MAX_FILE (64ULL << 30)
#define MANIFEST "MANIFEST"
/* the LMDB environments a backup copies, relative to the data folder */
static const char *const lmdb_envs[] = { "store" };
/* the queue: one file per message (transport/mta/queue.h); a backup from before held an LMDB queue here as
 * queue/data.mdb, which nothing reads any more */
#define QUEUE_DIR "queue"
#define OLD_QUEUE_ENV "queue/data.mdb"
/* what this server keeps for its sync sources (directory/sync_source.c) */
#define SYNC_DIR "sync"
/* plain files copied as they are */
static const char *const plain_files[] = { CONFIG_FILE_NAME, "tls/cert.pem", "tls/key.pem" };

static int sha256_file(const char *path, char hex[65], unsigned long long *size_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	unsigned char chunk[65536];
	size_t n;
	unsigned long long size = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		EVP_DigestUpdate(ctx, chunk, n);
		size += n;
	}
	int err = ferror(f);
	fclose(f);
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (err)
		return -1;
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	*size_r = size;
	return 0;
}

static int copy_file(const char *from, const char *to, int mode, struct buf *error_r)
{
	if (file_copy(from, to, mode, BACKUP_MAX_FILE) == 0)
		return IX_OK;
	buf_printf(error_r, "cannot copy %s to %s: %s", from, to, strerror(errno));
	return IX_EIO;
}

/* Hot copy of an LMDB environment folder (consistent while writers run), compacted. */
static int copy_env(const char *from_dir, const char *to_dir, struct buf *error_r)
{
	MDB_env *env;
	int rc = mdb_env_create(&env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(env, 128);
	if (rc == 0)
		rc = mdb_env_open(env, from_dir, MDB_RDONLY, 0600);
	if (rc == 0) {
		if (mkdir_p(to_dir, 0700) < 0)
			rc = errno;
		else
			rc = mdb_env_copy2(env, to_dir, MDB_CP_COMPACT);
	}
	mdb_env_close(env);
	if (rc != 0) {
		buf_printf(error_r, "cannot copy %s: %s", from_dir, mdb_strerror(rc));
		return IX_EIO;
	}
	return IX_OK;
}

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void manifest_add(struct buf *m, const char *dest, const char *rel)
{
	char *path = xasprintf("%s/%s", dest, rel);
	char hex[65];
	unsigned long long size;
	if (sha256_file(path, hex, &size) == 0)
		buf_printf(m, "file %s %llu %s\n", hex, size, rel);
	free(path);
}

/* The folders of files a backup copies one by one: the queue (one file per message) and what this server keeps
 * for its sync sources (docs/sync.md: passwords, CA certificates, cookies; never the pass-through caches, hashes of
 * the users' passwords at the source), each file that a name test accepts. */
static int sync_file_valid(const char *name)
{
	static const char *const ends[] = { ".secret", "-ca.pem", ".cookie" };
	size_t len = strlen(name);
	for (size_t i = 0; name[0] != '.' && i < IX_ARRAY_LEN(ends); i++) {
		size_t el = strlen(ends[i]);
		if (len > el && strcmp(name + len - el, ends[i]) == 0)
			return 1;
	}
	return 0;
}

static int queue_file_valid(const char *name)
{
	return queue_id_valid(name);
}

struct file_folder {
	const char *dir;
	int (*valid)(const char *name);
	unsigned long long max;
};
static const struct file_folder file_folders[] = {
	{ QUEUE_DIR, queue_file_valid, QUEUE_HEADER_MAX + QUEUE_BODY_MAX },
	{ SYNC_DIR, sync_file_valid, 1024 * 1024 },
};

/* The names of the files of each of file_folders a backup holds. */
struct folder_files {
	char **names[IX_ARRAY_LEN(file_folders)];
	size_t count[IX_ARRAY_LEN(file_folders)];
};

static void folder_files_free(struct folder_files *ff)
{
	for (size_t i = 0; i < IX_ARRAY_LEN(file_folders); i++)
		queue_ids_free(&ff->names[i], ff->count[i]);
}

static void folder_files_add(struct folder_files *ff, size_t k, const char *name)
{
	ff->names[k] = xrealloc(ff->names[k], (ff->count[k] + 1) * sizeof(char *));
	ff->names[k][ff->count[k]++] = xstrdup(name);
}

/* Copies every file of folder k of the data folder into DEST (each file is replaced whole by the durable recipe, so
 * a copy is one version of it; one that is gone meanwhile was delivered or bounced, or its source deleted). The
 * names copied go to ff. */
static int copy_folder(const struct config *cfg, const char *dest, size_t k, struct folder_files *ff,
		       struct buf *error_r)
{
	const struct file_folder *fo = &file_folders[k];
	char *qdir = config_path(cfg, fo->dir), *to_dir = xasprintf("%s/%s", dest, fo->dir);
	int ret = IX_OK;
	if (mkdir_p(to_dir, 0700) < 0) {
		buf_printf(error_r, "cannot create %s: %s", to_dir, strerror(errno));
		ret = IX_EIO;
	}
	DIR *d = ret == IX_OK ? opendir(qdir) : NULL;
	if (d == NULL && ret == IX_OK && errno != ENOENT) {
		buf_printf(error_r, "cannot read %s: %s", qdir, strerror(errno));
		ret = IX_EIO;
	}
	struct dirent *e;
	while (d != NULL && ret == IX_OK && (e = readdir(d)) != NULL) {
		if (!fo->valid(e->d_name))
			continue; /* ".", "..", temp files of writes in progress */
		char *from = xasprintf("%s/%s", qdir, e->d_name), *to = xasprintf("%s/%s", to_dir, e->d_name);
		if (file_copy(from, to, 0600, fo->max) == 0) {
			folder_files_add(ff, k, e->d_name);
		} else if (errno != ENOENT) {
			buf_printf(error_r, "cannot copy %s to %s: %s", from, to, strerror(errno));
			ret = IX_EIO;
		}
		free(from);
		free(to);
	}
	if (d != NULL)
		closedir(d);
	free(qdir);
	free(to_dir);
	return ret;
}

static const char backup_help[] =
	"usage: interchange backup DEST [--data DIR]\n\n"
	"Takes a consistent online backup of this server while it runs: the directory (LDIF), every message\n"
	"in the queue (waiting for delivery, deferred, bounces), the information store (LMDB hot copy), the\n"
	"configuration and the certificate, with a MANIFEST of SHA-256 checksums of every file. The queue is\n"
	"copied before the store: a message delivered during the backup may be delivered again after a restore,\n"
	"never lost. DEST must be a new or empty folder. Restore with 'interchange restore'.\n";

int cmd_backup(const char *data_dir, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(backup_help, stdout);
		return CLI_EXIT_OK;
	}
	if (argc != 2) {
		fprintf(stderr, "interchange: backup needs one DEST folder\n\n%s", backup_help);
		return CLI_EXIT_USAGE;
	}
	const char *dest = argv[1];
	if (!folder_empty_or_missing(dest)) {
		cli_error("%s exists and is not empty: a backup goes into a new folder", dest);
		return CLI_EXIT_FAIL;
	}
	struct config cfg;
	if (cli_load_config_keep(data_dir, &cfg) < 0)
		return CLI_EXIT_FAIL;
	struct buf err = BUF_INIT, m = BUF_INIT;
	int ret = IX_OK;
	char *tls = xasprintf("%s/tls", dest);
	if (mkdir_p(dest, 0700) < 0 || mkdir_p(tls, 0700) < 0) {
		buf_printf(&err, "cannot create %s: %s", dest, strerror(errno));
		ret = IX_EIO;
	}
	free(tls);
	/* the directory first: a store record never names a mailbox the directory backup lacks */
	char *ldif = xasprintf("%s/directory.ldif", dest), *conf = xasprintf("%s/directory-config.ldif", dest);
	if (ret == IX_OK)
		ret = slapd_export(&cfg, 1, ldif, &err);
	if (ret == IX_OK)
		ret = slapd_export(&cfg, 0, conf, &err);
	if (ret == IX_OK)
		chmod(conf, 0600);
	free(ldif);
	free(conf);
	/* the queue before the store: a message delivered meanwhile is then in both (delivered again after a restore),
	 * never in neither */
	struct folder_files ff = { 0 };
	for (size_t k = 0; k < IX_ARRAY_LEN(file_folders) && ret == IX_OK; k++)
		ret = copy_folder(&cfg, dest, k, &ff, &err);
	size_t nqueued = ff.count[0];
	for (size_t i = 0; i < IX_ARRAY_LEN(lmdb_envs) && ret == IX_OK; i++) {
		char *from = config_path(&cfg, lmdb_envs[i]), *mdb = xasprintf("%s/data.mdb", from);
		char *to = xasprintf("%s/%s", dest, lmdb_envs[i]);
		if (exists(mdb))
			ret = copy_env(from, to, &err);
		free(from);
		free(mdb);
		free(to);
	}
	for (size_t i = 0; i < IX_ARRAY_LEN(plain_files) && ret == IX_OK; i++) {
		char *from = config_path(&cfg, plain_files[i]), *to = xasprintf("%s/%s", dest, plain_files[i]);
		ret = copy_file(from, to, 0600, &err);
		free(from);
		free(to);
	}
	if (ret == IX_OK) {
		time_t now = time(NULL);
		char when[32];
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
		buf_printf(&m, "interchange-backup %d\ncreated %s\ndomain %s\nhostname %s\nsuffix %s\n", BACKUP_FORMAT,
			   when, cfg.domain, cfg.hostname ? cfg.hostname : "", cfg.suffix);
		manifest_add(&m, dest, "directory.ldif");
		manifest_add(&m, dest, "directory-config.ldif");
		for (size_t i = 0; i < IX_ARRAY_LEN(lmdb_envs); i++) {
			char *rel = xasprintf("%s/data.mdb", lmdb_envs[i]);
			manifest_add(&m, dest, rel);
			free(rel);
		}
		for (size_t i = 0; i < IX_ARRAY_LEN(plain_files); i++)
			manifest_add(&m, dest, plain_files[i]);
		for (size_t k = 0; k < IX_ARRAY_LEN(file_folders); k++) {
			for (size_t i = 0; i < ff.count[k]; i++) {
				char *rel = xasprintf("%s/%s", file_folders[k].dir, ff.names[k][i]);
				manifest_add(&m, dest, rel);
				free(rel);
			}
		}
		char *mp = xasprintf("%s/%s", dest, MANIFEST);
		if (write_file_atomic(mp, m.data, m.len, 0600) < 0) {
			buf_printf(&err, "cannot write %s: %s", mp, strerror(errno));
			ret = IX_EIO;
		}
		free(mp);
	}
	if (ret == IX_OK)
		printf("Backed up %s to %s (%zu queued message%s)\n", cfg.data_dir, dest, nqueued,
		       nqueued == 1 ? "" : "s");
	else
		cli_error("backup failed: %s", buf_cstr(&err));
	folder_files_free(&ff);
	buf_free(&err);
	buf_free(&m);
	config_free(&cfg);
	return ret == IX_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* Verifies every "file SHA SIZE PATH" line of the manifest; the ids of the queue's files listed go to *queued_r
 * (queue_ids_free). */
static int verify_manifest(const char *src, struct folder_files *ff, struct buf *error_r)
{
	char *mp = xasprintf("%s/%s", src, MANIFEST), *text;
	if (read_file(mp, 1024 * 1024, &text, NULL) < 0) {
		buf_printf(error_r, "%s is not an Interchange backup (no %s)", src, MANIFEST);
		free(mp);
		return IX_EINVAL;
	}
	free(mp);
	int ret = IX_OK;
	if (strncmp(text, "interchange-backup 1\n", 21) != 0) {
		buf_printf(error_r, "%s/%s has an unknown format", src, MANIFEST);
		ret = IX_EINVAL;
	}
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line != NULL && ret == IX_OK;
	     line = strtok_r(NULL, "\n", &save)) {
		char want[65], rel[1024];
		unsigned long long size, got_size;
		if (strncmp(line, "file ", 5) != 0)
			continue;
		if (sscanf(line, "file %64s %llu %1023s", want, &size, rel) != 3 || strstr(rel, "..") != NULL) {
			buf_printf(error_r, "bad manifest line: %s", line);
			ret = IX_EINVAL;
			break;
		}
		char *path = xasprintf("%s/%s", src, rel), got[65];
		if (sha256_file(path, got, &got_size) < 0 || got_size != size || strcmp(got, want) != 0) {
			buf_printf(error_r, "%s is missing or damaged (checksum mismatch)", path);
			ret = IX_ECORRUPT;
		}
		free(path);
		for (size_t k = 0; k < IX_ARRAY_LEN(file_folders) && ret == IX_OK; k++) {
			size_t dlen = strlen(file_folders[k].dir);
			if (strncmp(rel, file_folders[k].dir, dlen) == 0 && rel[dlen] == '/' &&
			    file_folders[k].valid(rel + dlen + 1))
				folder_files_add(ff, k, rel + dlen + 1);
		}
	}
	free(text);
	return ret;
}

/* The replication of the backed-up server, from its configuration export: its olcServerID, and its olcSyncrepl
 * and olcMultiProvider lines (which hold the replication password: it lives nowhere else) as LDIF lines for the
 * directory database's entry. The attendant rewrites the providers from the directory at its first sweep (new
 * paths, servers added since); what it needs from here is the ID and the password. */
static void replication_from(const char *src, unsigned *server_id_r, struct buf *extra_r)
{
	*server_id_r = 0;
	char *path = xasprintf("%s/directory-config.ldif", src), *text = NULL;
	if (read_file(path, 16 * 1024 * 1024, &text, NULL) == 0) {
		/* unfold: a line that starts with one space continues the previous one (RFC 2849) */
		struct buf u = BUF_INIT;
		for (const char *p = text; *p != '\0'; p++) {
			if (*p == '\n' && p[1] == ' ')
				p++;
			else
				buf_append(&u, p, 1);
		}
		const char *dn = "";
		for (char *line = u.data, *next; line != NULL && *line != '\0'; line = next) {
			next = strchr(line, '\n');
			if (next != NULL)
				*next++ = '\0';
			if (strncmp(line, "dn: ", 4) == 0)
				dn = line + 4;
			else if (strcmp(dn, "cn=config") == 0 && strncmp(line, "olcServerID: ", 13) == 0)
				*server_id_r = (unsigned)strtoul(line + 13, NULL, 10);
			else if (strncmp(dn, "olcDatabase={1}mdb,cn=config", 28) == 0 &&
				 (strncmp(line, "olcSyncrepl:", 12) == 0 ||
				  strncmp(line, "olcMultiProvider:", 17) == 0))
				buf_printf(extra_r, "%s\n", line);
		}
		buf_free(&u);
		free(text);
	}
	free(path);
}

/* The olcRootPW value from the backup's configuration export (the hash, reused as it is). */
static char *rootpw_from(const char *src)
{
	char *path = xasprintf("%s/directory-config.ldif", src), *text, *hash = NULL;
	if (read_file(path, 16 * 1024 * 1024, &text, NULL) == 0) {
		char *p = strstr(text, "\nolcRootPW:");
		if (p != NULL) {
			p += 11;
			int b64 = *p == ':';
			if (b64)
				p++;
			while (*p == ' ')
				p++;
			size_t n = strcspn(p, "\n");
			if (b64) {
				struct buf out = BUF_INIT;
				if (n < 600)
					base64_decode_lenient(p, n, &out);
				if (out.len > 0)
					hash = buf_steal(&out);
				buf_free(&out);
			} else {
				hash = xstrndup(p, n);
			}
		}
		free(text);
	}
	free(path);
	return hash;
}

static const char restore_help[] =
	"usage: interchange restore SRC [--ldap-port N] [--ldaps-port N] [--smtp-port N] [--submission-port N]\n"
	"         [--submissions-port N] [--imap-port N] [--imaps-port N] [--pop3-port N] [--pop3s-port N] [--sieve-port N]\n"
	"         [--metrics-port N] [--http-port N] [--https-port N] [--data DIR]\n\n"
	"Restores a backup made with 'interchange backup' into a new data folder (default ./var), which must\n"
	"not exist yet: every recipient, list, folder, message and flag comes back, and every message that was\n"
	"in the queue. Checksums are verified first. Then start it with 'interchange start'.\n"
	"The restored server keeps the backed-up server's ports; the --PORTNAME-port options (as for init)\n"
	"choose others, so that a restored copy can run beside the original, to verify a backup.\n";

int cmd_restore(const char *data_dir, int argc, char **argv)
{
	enum { O_PORT0 = 256 };
	static const struct option opts[] = {
		CLI_PORT_OPTIONS(O_PORT0),
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned ports[PORT_COUNT];
	int port_given[PORT_COUNT] = { 0 };
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(restore_help, stdout);
			return CLI_EXIT_OK;
		}
		if (c < O_PORT0 || c >= O_PORT0 + PORT_COUNT) {
			cli_error("restore: unknown or incomplete option %s: see 'interchange restore --help'",
				  argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
		if (cli_port_option(c, O_PORT0, optarg, ports) < 0)
			return CLI_EXIT_USAGE;
		port_given[c - O_PORT0] = 1;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "interchange: restore needs one SRC folder\n\n%s", restore_help);
		return CLI_EXIT_USAGE;
	}
	const char *src = argv[optind];
	struct buf err = BUF_INIT;
	struct folder_files ff = { 0 };
	if (verify_manifest(src, &ff, &err) != IX_OK) {
		cli_error("%s", buf_cstr(&err));
		buf_free(&err);
		folder_files_free(&ff);
		return CLI_EXIT_FAIL;
	}
	/* a backup from before the administrator became an entry holds its hash in olcRootPW (the attendant moves it
	 * into the entry); a newer one has it in the cn=admin entry of the data export, and none here */
	char *rootpw = rootpw_from(src);
	/* the backup's bootstrap configuration, re-rooted in the new folder */
	struct config cfg, old;
	struct bootstrap boot = { .what = "restore", .user_optional = 1 };
	int ret = config_load(src, &old, &err);
	if (ret == IX_OK) {
		config_init_defaults(&cfg, data_dir, old.domain);
		free(cfg.suffix);
		free(cfg.admin_dn);
		free(cfg.listen);
		cfg.suffix = xstrdup(old.suffix);
		cfg.admin_dn = xstrdup(old.admin_dn);
		cfg.org = old.org ? xstrdup(old.org) : NULL;
		cfg.hostname = old.hostname ? xstrdup(old.hostname) : NULL;
		cfg.server_dn = old.server_dn ? xstrdup(old.server_dn) : NULL;
		cfg.listen = xstrdup(old.listen);
		cfg.anonymous_read = old.anonymous_read;
		for (int p = 0; p < PORT_COUNT; p++)
			cfg.ports[p] = port_given[p] ? ports[p] : old.ports[p];
		/* run as root: the same service user as the backed-up server, when it can reach the new folder */
		boot.user = old.user;
		if (cli_ports_distinct(cfg.ports) < 0)
			ret = IX_EINVAL;
		else if ((ret = bootstrap_check(&cfg, &boot, &err)) != IX_OK)
			cli_error("%s", buf_cstr(&err));
		boot.user = NULL;
		config_free(&old);
		if (ret != IX_OK) {
			buf_free(&err);
			free(rootpw);
			config_free(&cfg);
			folder_files_free(&ff);
			return ret == IX_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
		}
	}
	int loaded = ret == IX_OK;
	char *cert = xasprintf("%s/tls/cert.pem", src), *key = xasprintf("%s/tls/key.pem", src);
	boot.cert = cert;
	boot.key = key;
	if (ret == IX_OK)
		ret = bootstrap_create(&cfg, &boot, &err);
	free(cert);
	free(key);
	unsigned server_id = 0;
	struct buf repl = BUF_INIT;
	replication_from(src, &server_id, &repl);
	if (ret == IX_OK)
		ret = slapd_create_config(&cfg, rootpw, server_id, repl.len > 0 ? buf_cstr(&repl) : NULL, &err);
	buf_free(&repl);
	if (ret == IX_OK) {
		char *ldif = xasprintf("%s/directory.ldif", src);
		ret = slapd_load_ldif(&cfg, ldif, &err);
		free(ldif);
	}
	for (size_t i = 0; i < IX_ARRAY_LEN(lmdb_envs) && ret == IX_OK; i++) {
		char *from = xasprintf("%s/%s/data.mdb", src, lmdb_envs[i]);
		char *to = xasprintf("%s/%s/data.mdb", cfg.data_dir, lmdb_envs[i]);
		if (exists(from))
			ret = copy_file(from, to, 0600, &err);
		free(from);
		free(to);
	}
	/* the queue and the sync sources' files: every file the manifest lists (and verified) */
	for (size_t k = 0; k < IX_ARRAY_LEN(file_folders) && ret == IX_OK; k++) {
		char *dir = xasprintf("%s/%s", cfg.data_dir, file_folders[k].dir);
		if (ff.count[k] > 0 && mkdir_p(dir, 0700) < 0) {
			buf_printf(&err, "cannot create %s: %s", dir, strerror(errno));
			ret = IX_EIO;
		}
		free(dir);
		for (size_t i = 0; i < ff.count[k] && ret == IX_OK; i++) {
			char *from = xasprintf("%s/%s/%s", src, file_folders[k].dir, ff.names[k][i]);
			char *to = xasprintf("%s/%s/%s", cfg.data_dir, file_folders[k].dir, ff.names[k][i]);
			ret = copy_file(from, to, 0600, &err);
			free(from);
			free(to);
		}
	}
	size_t nqueued = ff.count[0];
	char *old_queue = xasprintf("%s/%s", src, OLD_QUEUE_ENV);
	if (ret == IX_OK && exists(old_queue))
		fprintf(stderr,
			"interchange: note: %s is a queue of an earlier design that this version does not read: "
			"not restored\n",
			old_queue);
	free(old_queue);
	free(rootpw);
	if (ret == IX_OK)
		ret = bootstrap_chown(&cfg, &boot, &err);
	if (ret == IX_OK) {
		printf("Restored %s into %s (%zu queued message%s)\n", src, cfg.data_dir, nqueued,
		       nqueued == 1 ? "" : "s");
		cli_print_created(&cfg);
	} else {
		cli_error("restore failed: %s", buf_cstr(&err));
		bootstrap_abandon(&cfg, &boot);
	}
	buf_free(&err);
	folder_files_free(&ff);
	if (loaded)
		config_free(&cfg);
	return ret == IX_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
