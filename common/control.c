/* control.c - asking the attendant over its control socket (see control.h). */
#include "common/control.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int control_ask(const struct config *cfg, const char *request, int timeout_s, struct buf *answer_r, struct buf *error_r)
{
	char *path = config_path(cfg, CONTROL_SOCK);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int ret = IX_EUNAVAIL, fd = -1;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		buf_printf(error_r, "the data folder path is too long for a local socket (%s)", path);
		goto out;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { timeout_s, 0 };
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || write_full(fd, request, strlen(request)) < 0) {
		buf_printf(error_r, "the attendant does not answer on %s (%s): is Interchange running?", path,
			   strerror(errno));
		goto out;
	}
	size_t before = answer_r->len;
	char chunk[4096];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 && answer_r->len - before < CONTROL_ANSWER_MAX)
		buf_append(answer_r, chunk, (size_t)n);
	if (answer_r->len > before)
		ret = IX_OK;
	else
		buf_printf(error_r, "the attendant did not answer %s in %d seconds", path, timeout_s);
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}
