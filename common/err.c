/* err.c - names of the Interchange error codes. */
#include "common/err.h"

const char *ix_strerror(int err)
{
	switch (err) {
	case IX_OK: return "success";
	case IX_EINVAL: return "invalid input";
	case IX_ENOTFOUND: return "not found";
	case IX_EEXIST: return "already exists";
	case IX_EIO: return "input/output error";
	case IX_EUNAVAIL: return "service unavailable";
	case IX_EAUTH: return "authentication failed";
	case IX_EPERM: return "permission denied";
	case IX_ELIMIT: return "limit exceeded";
	case IX_ECORRUPT: return "data corrupt";
	case IX_EAGAIN: return "temporary failure";
	case IX_EBLOCKED: return "temporarily blocked";
	default: return "unknown error";
	}
}
