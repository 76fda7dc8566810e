/* Set-user-ID, set-group-ID and file capabilities through changes to a
 * file, as Linux clears them on its own filesystems:
 *   - a write, truncate or O_TRUNC open by a caller without CAP_FSETID
 *     clears set-user-ID, and set-group-ID when group execute is set or
 *     the caller is not in the file's group;
 *   - the same by root keeps them;
 *   - chown clears them whoever calls it;
 *   - a write drops security.capability whoever writes.
 * The daemon writes as root, so none of this comes for free: each case
 * runs with passthrough on (the kernel writes the backing file) and off
 * (the daemon writes it), and the upper file is checked as well as the
 * union's view. */
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/xattr.h>
#include <unistd.h>

enum change { WRITE, TRUNCATE, OPEN_TRUNC };

struct as_user_change {
	const char *path;
	enum change change;
};

static int change_file(void *arg)
{
	const struct as_user_change *c = arg;
	int fd;

	switch (c->change) {
	case WRITE:
		fd = open(c->path, O_WRONLY | O_APPEND);
		UCHECK(fd >= 0, "open for append");
		UCHECK(write(fd, "more\n", 5) == 5, "write");
		close(fd);
		break;
	case TRUNCATE:
		UCHECK(truncate(c->path, 3) == 0, "truncate");
		break;
	case OPEN_TRUNC:
		fd = open(c->path, O_WRONLY | O_TRUNC);
		UCHECK(fd >= 0, "open with O_TRUNC");
		close(fd);
		break;
	}
	return 0;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

/* A file of mode `before` in the upper branch (group root, or the user's
 * own group), changed through the union by a throwaway user; its mode must
 * then be `after`, seen through the union (a fresh stat, not a cached one)
 * and in the upper branch. */
static void check_change_by(bool users_group, const char *extra, enum change change,
			    mode_t before, mode_t after)
{
	uid_t uid;
	gid_t gid;
	char msg[512] = "";

	make_user(&uid, &gid);
	assert_ok(chmod(H.root, 0755));
	mk_file(UP("prog"), "#!/bin/sh\n", 0755);
	h_mount(FMT_OVL, 1, extra);
	assert_ok(chmod(H.mnt, 0755));
	if (users_group)
		assert_ok(chown(MN("prog"), 0, gid));
	assert_ok(chmod(MN("prog"), before));
	struct as_user_change c = { .path = MN("prog"), .change = change };
	cr_assert_eq(as_user(uid, gid, change_file, &c, msg, sizeof msg), 0, "%s", msg);
	cr_assert_eq(mode_of(MN("prog")), after, "mode after the change: %o, want %o",
		     mode_of(MN("prog")), after);
	cr_assert_eq(mode_of(UP("prog")), after, "upper mode after the change: %o, want %o",
		     mode_of(UP("prog")), after);
}

#define PASSTHROUGH_ON_AND_OFF(name, users_group, change, before, after)           \
	HTEST(setid, name##_passthrough)                                             \
	{                                                                            \
		check_change_by(users_group, NULL, change, before, after);           \
	}                                                                            \
	HTEST(setid, name##_through_the_daemon)                                      \
	{                                                                            \
		check_change_by(users_group, "passthrough=off", change, before, after); \
	}

PASSTHROUGH_ON_AND_OFF(write_by_a_user_clears_setuid_and_setgid, false, WRITE, 06777, 0777)
PASSTHROUGH_ON_AND_OFF(write_by_a_non_member_clears_setgid_without_group_exec, false, WRITE,
		       06766, 0766)
PASSTHROUGH_ON_AND_OFF(write_by_a_member_keeps_setgid_without_group_exec, true, WRITE, 06766,
		       02766)
PASSTHROUGH_ON_AND_OFF(truncate_by_a_user_clears_setuid, false, TRUNCATE, 06777, 0777)
PASSTHROUGH_ON_AND_OFF(o_trunc_open_by_a_user_clears_setuid, false, OPEN_TRUNC, 06777, 0777)

static void write_as_root(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, "more\n", 5), 5);
	cr_assert_eq(ftruncate(fd, 3), 0);
	close(fd);
}

/* CAP_FSETID keeps the bits, as on ext4. */
HTEST(setid, write_and_truncate_by_root_keep_setuid)
{
	mk_file(UP("prog"), "#!/bin/sh\n", 0755);
	h_mount(FMT_OVL, 1, NULL);
	assert_ok(chmod(MN("prog"), 06755));
	write_as_root(MN("prog"));
	cr_assert_eq(mode_of(MN("prog")), 06755, "mode: %o", mode_of(MN("prog")));
	cr_assert_eq(mode_of(UP("prog")), 06755, "upper mode: %o", mode_of(UP("prog")));
}

HTEST(setid, chown_clears_setuid_even_by_root)
{
	mk_file(LO(0, "prog"), "#!/bin/sh\n", 06755);
	h_mount(FMT_OVL, 1, NULL);
	assert_ok(chown(MN("prog"), 1, 1));
	cr_assert_eq(mode_of(MN("prog")), 0755, "mode: %o", mode_of(MN("prog")));
	cr_assert_eq(mode_of(UP("prog")), 0755, "upper mode: %o", mode_of(UP("prog")));
}

/* A version 2 capability set granting CAP_NET_RAW (what setcap writes). */
static const unsigned char cap_net_raw[] = {
	0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static void check_write_drops_capability(const char *extra)
{
	mk_file(UP("ping"), "binary\n", 0755);
	assert_ok(setxattr(UP("ping"), "security.capability", cap_net_raw, sizeof cap_net_raw, 0));
	h_mount(FMT_OVL, 1, extra);
	cr_assert_eq(getxattr(MN("ping"), "security.capability", NULL, 0),
		     (ssize_t)sizeof cap_net_raw, "the union does not show the capability");
	write_as_root(MN("ping"));
	assert_errno(getxattr(MN("ping"), "security.capability", NULL, 0), ENODATA);
	assert_errno(getxattr(UP("ping"), "security.capability", NULL, 0), ENODATA);
}

HTEST(setid, write_drops_file_capability_passthrough)
{
	check_write_drops_capability(NULL);
}

HTEST(setid, write_drops_file_capability_through_the_daemon)
{
	check_write_drops_capability("passthrough=off");
}

/* New objects in a set-group-ID directory take its group, and new
 * directories its bit, as the upper filesystem gives them: for root,
 * for another user, and for a name that replaces a whiteout (built in
 * the work directory, which is not set-group-ID). */
static void assert_owner(const char *path, uid_t uid, gid_t gid, bool setgid)
{
	struct stat st;

	assert_ok(lstat(path, &st));
	cr_assert(st.st_uid == uid && st.st_gid == gid, "%s: owner %u:%u, want %u:%u", path,
		  st.st_uid, st.st_gid, uid, gid);
	cr_assert_eq(!!(st.st_mode & S_ISGID), setgid, "%s: mode %04o", path,
		     st.st_mode & 07777);
}

static int create_as_user(void *arg)
{
	const char *dir = arg;
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/userfile", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	UCHECK(fd >= 0, "create %s", path);
	close(fd);
	snprintf(path, sizeof(path), "%s/userdir", dir);
	UCHECK(mkdir(path, 0755) == 0, "mkdir %s", path);
	return 0;
}

UTEST(setid, new_objects_take_a_setgid_directorys_group)
{
	const gid_t group = 4321;
	char msg[512] = "";
	uid_t uid;
	gid_t gid;
	int fd;

	mk_dir(LO(0, "g"), 0777);
	mk_file(LO(0, "g/gone"), "lower\n", 0644);
	mk_dir(LO(0, "g/gonedir"), 0755);
	assert_ok(chown(LO(0, "g"), 0, group));
	assert_ok(chmod(LO(0, "g"), 02777));
	h_mount(fmt, 1, NULL);
	assert_ok(unlink(MN("g/gone")));
	assert_ok(rmdir(MN("g/gonedir")));

	fd = open(MN("g/file"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	cr_assert(fd >= 0, "create: %s", strerror(errno));
	close(fd);
	assert_ok(mkdir(MN("g/dir"), 0755));
	fd = open(MN("g/gone"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	cr_assert(fd >= 0, "create over a whiteout: %s", strerror(errno));
	close(fd);
	assert_ok(mkdir(MN("g/gonedir"), 0755));
	make_user(&uid, &gid);
	cr_assert_eq(as_user(uid, gid, create_as_user, MN("g"), msg, sizeof(msg)), 0, "%s", msg);

	const struct {
		const char *name;
		uid_t uid;
		bool setgid;
	} want[] = {
		{ "g/file", 0, false },     { "g/dir", 0, true },
		{ "g/gone", 0, false },     { "g/gonedir", 0, true },
		{ "g/userfile", uid, false }, { "g/userdir", uid, true },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_owner(MN(want[i].name), want[i].uid, group, want[i].setgid);
		assert_owner(UP(want[i].name), want[i].uid, group, want[i].setgid);
	}
}
