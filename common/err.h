/* err.h - Interchange error codes: 0 is success, our own negative range below, one ix_strerror().
 * Foreign libraries' errors (LDAP, LMDB, OpenSSL) are translated at exactly one boundary in each module. */
#ifndef IX_ERR_H
#define IX_ERR_H

enum ix_err {
	IX_OK = 0,
	IX_EINVAL = -30900,    /* bad input from the caller or the network */
	IX_ENOTFOUND = -30901, /* no such object */
	IX_EEXIST = -30902,    /* already exists (duplicate address, name, folder) */
	IX_EIO = -30903,       /* I/O or system call failure; errno-level detail is in error_r */
	IX_EUNAVAIL = -30904,  /* a needed service is not running or not answering (temporary) */
	IX_EAUTH = -30905,     /* authentication failed */
	IX_EPERM = -30906,     /* not allowed */
	IX_ELIMIT = -30907,    /* a configured limit was exceeded (size, count, quota) */
	IX_ECORRUPT = -30908,  /* stored data is inconsistent */
	IX_EAGAIN = -30909,    /* temporary failure, try again */
	IX_EBLOCKED =
		-30910, /* temporarily blocked after too many failed logins (a throttle or the directory's lockout) */
};

/* A short English phrase for an ix_err code; never NULL. */
const char *ix_strerror(int err);

#endif
