/* privs.c - system user creation, privilege dropping with an ambient bind capability, and chown of a tree. */
#include "common/privs.h"
#include "common/err.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int privs_lookup(const char *name, uid_t *uid_r, gid_t *gid_r)
{
	struct passwd *pw = getpwnam(name);
	if (pw == NULL)
		return IX_ENOTFOUND;
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	return IX_OK;
}

int privs_ensure_user(const char *name, struct buf *error_r)
{
	uid_t uid;
	gid_t gid;
	if (privs_lookup(name, &uid, &gid) == IX_OK)
		return IX_OK;
	pid_t pid = fork();
	if (pid == 0) {
		execl("/usr/sbin/useradd", "useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
		      "/nonexistent", "--shell", "/usr/sbin/nologin", "--comment", "Interchange mail server", name,
		      (char *)NULL);
		_exit(127);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    privs_lookup(name, &uid, &gid) != IX_OK) {
		buf_printf(error_r, "could not create the system user %s with useradd (status %d)", name,
			   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return IX_EIO;
	}
	return IX_OK;
}

int privs_can_reach(const char *path, uid_t uid, gid_t gid)
{
	char *p = xstrdup(path);
	int ok = 1;
	for (char *slash = strrchr(p, '/'); slash != NULL && ok; slash = strrchr(p, '/')) {
		*slash = '\0';
		const char *dir = p[0] != '\0' ? p : "/";
		struct stat st;
		if (stat(dir, &st) < 0) {
			ok = 0;
			break;
		}
		mode_t bit = st.st_uid == uid ? S_IXUSR : st.st_gid == gid ? S_IXGRP : S_IXOTH;
		ok = (st.st_mode & bit) != 0;
		if (p[0] == '\0')
			break;
	}
	free(p);
	return ok;
}

static uid_t chown_uid;
static gid_t chown_gid;
static int chown_failed;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (lchown(path, chown_uid, chown_gid) < 0)
		chown_failed = errno;
	return 0;
}

int privs_chown_tree(const char *path, uid_t uid, gid_t gid, struct buf *error_r)
{
	chown_uid = uid;
	chown_gid = gid;
	chown_failed = 0;
	if (nftw(path, chown_one, 32, FTW_PHYS) < 0 || chown_failed != 0) {
		buf_printf(error_r, "cannot give %s to the service user: %s", path,
			   strerror(chown_failed ? chown_failed : errno));
		return IX_EIO;
	}
	return IX_OK;
}

int privs_drop(const char *user, int keep_bind, struct buf *error_r)
{
	if (geteuid() != 0 || user == NULL || user[0] == '\0' || strcmp(user, "root") == 0)
		return IX_OK;
	uid_t uid;
	gid_t gid;
	if (privs_lookup(user, &uid, &gid) != IX_OK) {
		buf_printf(error_r,
			   "the service user %s does not exist (it is created by 'interchange init' run as root)",
			   user);
		return IX_EPERM;
	}
	if (keep_bind && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		goto fail;
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		goto fail;
	if (keep_bind) {
		/* keep CAP_NET_BIND_SERVICE only: permitted, effective and inheritable, then ambient for children */
		struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct data[2];
		memset(data, 0, sizeof(data));
		data[0].permitted = data[0].effective = data[0].inheritable = 1u << CAP_NET_BIND_SERVICE;
		if (syscall(SYS_capset, &hdr, data) < 0 ||
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) < 0)
			goto fail;
	}
	if (setuid(0) == 0) {
		buf_printf(error_r, "dropping privileges to %s did not stick", user);
		return IX_EPERM;
	}
	return IX_OK;
fail:
	buf_printf(error_r, "cannot become the service user %s: %s", user, strerror(errno));
	return IX_EPERM;
}
