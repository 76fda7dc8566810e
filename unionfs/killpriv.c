/* Clearing set-ID bits in the daemon (see killpriv.h). */
#include "killpriv.h"

#include <errno.h>
#include <linux/fuse.h>
#include <sys/stat.h>

#include "passthrough.h"

/* Supplementary groups looked at; a caller in more is treated as not in
 * the file's group, which clears a bit rather than keeping one. */
#define MAX_GROUPS 64

static __thread bool request_kills;

void killpriv_note_request(const void *buf, size_t len)
{
	const struct fuse_in_header *h = buf;
	const void *in = h + 1;

	request_kills = false;
	if (len < sizeof(*h))
		return;
	len -= sizeof(*h);
	switch (h->opcode) {
	case FUSE_OPEN:
		if (len >= sizeof(struct fuse_open_in))
			request_kills = ((const struct fuse_open_in *)in)->open_flags &
					FUSE_OPEN_KILL_SUIDGID;
		break;
	case FUSE_WRITE:
		if (len >= sizeof(struct fuse_write_in))
			request_kills = ((const struct fuse_write_in *)in)->write_flags &
					FUSE_WRITE_KILL_SUIDGID;
		break;
	default:
		break;
	}
}

void killpriv_negotiate(void)
{
	pt_init_add(FUSE_HANDLE_KILLPRIV_V2);
}

bool killpriv_enabled(void)
{
	return pt_init_granted(FUSE_HANDLE_KILLPRIV_V2);
}

bool killpriv_requested(void)
{
	return request_kills;
}

static bool caller_in_group(fuse_req_t req, gid_t gid)
{
	gid_t groups[MAX_GROUPS];
	int n;

	if (fuse_req_ctx(req)->gid == gid)
		return true;
	n = fuse_req_getgroups(req, MAX_GROUPS, groups);
	for (int i = 0; i < n && i < MAX_GROUPS; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

mode_t killpriv_mode(fuse_req_t req, const struct stat *st)
{
	mode_t mode = st->st_mode & 07777;

	if (!S_ISREG(st->st_mode))
		return mode;
	mode &= ~(mode_t)S_ISUID;
	if ((mode & S_ISGID) && ((mode & S_IXGRP) || !caller_in_group(req, st->st_gid)))
		mode &= ~(mode_t)S_ISGID;
	return mode;
}

int killpriv_fd(fuse_req_t req, fuse_ino_t ino, int fd)
{
	struct stat st;
	mode_t mode;

	if (fstat(fd, &st) < 0)
		return -errno;
	mode = killpriv_mode(req, &st);
	if (mode == (st.st_mode & 07777))
		return 0;
	if (fchmod(fd, mode) < 0)
		return -errno;
	/* No attributes travel with this reply: the kernel must ask again. */
	fuse_lowlevel_notify_inval_inode(ufs.se, ino, -1, 0);
	return 0;
}
