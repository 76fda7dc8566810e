/* The container's file system: writes go to its upper dir (never to the
 * image's layers), deletions become whiteouts, volumes (rw, ro, named),
 * commit, and a hostile tar refused by import. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "rn_harness.h"

static char out[1 << 16];

static bool exists_in_layers(char **layers, const char *rel)
{
	char p[4096];
	struct stat st;

	for (size_t i = 0; layers && layers[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", layers[i], rel);
		if (lstat(p, &st) == 0)
			return true;
	}
	return false;
}

RTEST(fs, writes_go_to_upper_not_layers)
{
	char upper[4096], p[4200], marker[256], id[65];
	char **layers;
	struct stat st;
	int r;

	/* Make sure the image exists, then mark the time. */
	cr_assert_eq(rn_strata(out, sizeof(out), "run --rm busybox true"), 0, "%s", out);
	layers = rn_layers("busybox");
	cr_assert(layers && layers[0], "no layers for busybox");
	snprintf(marker, sizeof(marker), "%s/marker", getenv("STRATA_RT_DIR"));
	cr_assert_eq(rn_sh(out, sizeof(out), "touch '%s'; sleep 1", marker), 0);
	r = rn_strata(out, sizeof(out),
		      "run --name w busybox sh -c 'echo new > /newfile; echo more >> /etc/passwd; "
		      "mkdir -p /a/b; rm /bin/vi; rm -r /usr/bin 2>/dev/null; chmod 700 /home; true'");
	cr_assert_eq(r, 0, "%s", out);
	rn_id("w", id);
	cr_assert(rn_inspect("w", "GraphDriver.Data.UpperDir", upper, sizeof(upper)), "no UpperDir");
	snprintf(p, sizeof(p), "%s/newfile", upper);
	cr_expect(stat(p, &st) == 0 && st.st_size == 4, "new file not in upper (%s)", p);
	snprintf(p, sizeof(p), "%s/etc/passwd", upper);
	cr_expect(stat(p, &st) == 0, "copy-up of /etc/passwd not in upper");
	snprintf(p, sizeof(p), "%s/a/b", upper);
	cr_expect(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "new dir not in upper");
	/* A deletion is an overlay whiteout: a 0:0 character device. */
	snprintf(p, sizeof(p), "%s/bin/vi", upper);
	cr_expect(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0),
		  "no whiteout for /bin/vi in upper");
	cr_expect(exists_in_layers(layers, "bin/vi"), "the image lost /bin/vi");
	cr_expect(!exists_in_layers(layers, "newfile"), "a layer got /newfile");
	r = rn_sh(out, sizeof(out), "for l in %s %s; do [ -d \"$l\" ] && find \"$l\" -newer '%s'; done",
		  layers[0], layers[1] ? layers[1] : "", marker);
	cr_expect(r == 0 && !out[0], "image layers changed:\n%s", out);
	r = rn_strata(out, sizeof(out), "run --rm busybox sh -c 'ls /newfile 2>&1; ls /bin/vi'");
	cr_expect(r == 0 && strstr(out, "/newfile: No such file") && strstr(out, "\n/bin/vi\n"),
		  "a new container sees another's changes:\n%s", out);
	cr_assert_eq(rn_strata(out, sizeof(out), "rm w"), 0, "%s", out);
	rn_assert_gone(id, 0);
	for (size_t i = 0; layers[i]; i++)
		free(layers[i]);
	free(layers);
}

RTEST(fs, volumes_rw_ro_named)
{
	char host[256], p[4096], *s;
	int r;

	snprintf(host, sizeof(host), "%s/vol", getenv("STRATA_RT_DIR"));
	cr_assert_eq(rn_sh(out, sizeof(out), "mkdir -p %s && echo hello > %s/in", host, host), 0);
	r = rn_strata(out, sizeof(out),
		      "run --rm -v %s:/data -v %s:/ro:ro -v myvol:/named busybox sh -c '"
		      "cat /data/in; echo out > /data/out; echo named > /named/n; "
		      "if echo x > /ro/x; then echo RO-WRITABLE; fi; "
		      "if mount -o remount,rw /ro 2>/dev/null; then echo REMOUNTED; fi; "
		      "touch /ro/y 2>&1'", host, host);
	cr_expect_eq(r, 1, "exit %d:\n%s", r, out); /* the last touch fails */
	cr_expect(strstr(out, "hello"), "rw volume not readable:\n%s", out);
	cr_expect(!strstr(out, "RO-WRITABLE") && !strstr(out, "REMOUNTED"), "ro volume writable:\n%s", out);
	cr_expect(strstr(out, "Read-only file system"), "no EROFS from the ro volume:\n%s", out);
	snprintf(p, sizeof(p), "%s/out", host);
	s = rn_slurp(p);
	cr_expect(s && !strcmp(s, "out\n"), "rw volume write not on the host");
	free(s);
	snprintf(p, sizeof(p), "%s/volumes/myvol/_data/n", rn_root());
	s = rn_slurp(p);
	cr_expect(s && !strcmp(s, "named\n"), "named volume write not in %s", p);
	free(s);
	r = rn_strata(out, sizeof(out), "run --rm -v myvol:/named busybox cat /named/n");
	cr_expect(r == 0 && !strcmp(out, "named\n"), "named volume not persistent: %s", out);
	r = rn_strata(out, sizeof(out), "volume ls");
	cr_expect(strstr(out, "myvol"), "%s", out);
	r = rn_strata(out, sizeof(out), "run -d --name vu -v myvol:/named busybox sleep 600");
	cr_assert_eq(r, 0, "%s", out);
	r = rn_strata(out, sizeof(out), "volume rm myvol");
	cr_expect(r != 0 && strstr(out, "in use"), "volume rm of a used volume: %d %s", r, out);
	rn_strata(out, sizeof(out), "rm -f vu");
	r = rn_strata(out, sizeof(out), "volume rm myvol");
	cr_expect_eq(r, 0, "%s", out);
}

/* commit: the container's changes and deletions in a new image; the
 * volume's content stays out of it. */
RTEST(fs, commit_keeps_changes_and_deletions)
{
	char host[256];
	int r;

	snprintf(host, sizeof(host), "%s/cv", getenv("STRATA_RT_DIR"));
	cr_assert_eq(rn_sh(out, sizeof(out), "mkdir -p %s", host), 0);
	r = rn_strata(out, sizeof(out),
		      "run --name c1 -v %s:/vol busybox sh -c 'echo v1 > /etc/added; rm /bin/vi; "
		      "mkdir /dir; echo inside > /dir/f; echo secret > /vol/s'", host);
	cr_assert_eq(r, 0, "%s", out);
	r = rn_strata(out, sizeof(out), "commit c1 snap");
	cr_assert_eq(r, 0, "commit: %s", out);
	r = rn_strata(out, sizeof(out), "images");
	cr_expect(strstr(out, "snap"), "%s", out);
	r = rn_strata(out, sizeof(out),
		      "run --rm snap sh -c 'cat /etc/added /dir/f; ls /bin/vi 2>&1; ls /vol 2>&1; ls /bin/sh'");
	cr_expect(strstr(out, "v1\ninside\n"), "changes missing from the image:\n%s", out);
	cr_expect(strstr(out, "/bin/vi: No such file"), "deletion missing from the image:\n%s", out);
	cr_expect(!strstr(out, "secret") && !strstr(out, "\ns\n"), "volume content in the image:\n%s", out);
	cr_expect(strstr(out, "/bin/sh"), "base layer missing:\n%s", out);
	r = rn_strata(out, sizeof(out), "rm c1");
	cr_assert_eq(r, 0, "%s", out);
	r = rn_strata(out, sizeof(out), "run --name c2 snap true");
	cr_assert_eq(r, 0, "%s", out);
	r = rn_strata(out, sizeof(out), "image rm snap");
	cr_expect(r != 0 && strstr(out, "used by"), "image rm while used: %d %s", r, out);
	r = rn_strata(out, sizeof(out), "rm c2");
	cr_assert_eq(r, 0, "%s", out);
	r = rn_strata(out, sizeof(out), "image rm snap");
	cr_expect_eq(r, 0, "%s", out);
}

RTEST(fs, import_refuses_escaping_tar)
{
	const char *dir = getenv("STRATA_RT_DIR");
	int r;

	cr_assert_eq(rn_sh(out, sizeof(out),
			   "cd %s && mkdir -p t/sub && echo x > t/sub/f && "
			   "tar -cf evil.tar -C t sub/f --transform 's,sub/f,../evil,' -P", dir), 0, "%s", out);
	r = rn_strata(out, sizeof(out), "import %s/evil.tar evil", dir);
	cr_expect(r != 0, "a tar with ../evil was imported");
	cr_expect(strchr(out, '\n') == out + strlen(out) - 1, "not one line:\n%s", out);
	r = rn_strata(out, sizeof(out), "images");
	cr_expect(!strstr(out, "evil"), "%s", out);
	cr_assert_eq(rn_sh(out, sizeof(out), "cd %s && tar -cf good.tar -C t sub", dir), 0);
	r = rn_strata(out, sizeof(out), "import %s/good.tar good", dir);
	cr_expect_eq(r, 0, "%s", out);
	r = rn_strata(out, sizeof(out), "image rm good");
	cr_expect_eq(r, 0, "%s", out);
}

/* image rm checks "in use" and removes under the lock a starting run holds
 * from resolving its image until its config names it: while a run holds it
 * (here flock(1) stands in for one), rm waits instead of deleting an image
 * that is about to be used. */
RTEST(fs, image_rm_waits_for_a_starting_run)
{
	const char *dir = getenv("STRATA_RT_DIR");
	const char *bin = getenv("STRATA_BIN") ? getenv("STRATA_BIN") : "strata";
	int r;

	cr_assert_eq(rn_sh(out, sizeof(out), "cd %s && mkdir -p w/d && echo y > w/d/f && tar -cf w.tar -C w d",
			   dir), 0, "%s", out);
	cr_assert_eq(rn_strata(out, sizeof(out), "import %s/w.tar waiter", dir), 0, "%s", out);
	r = rn_sh(out, sizeof(out),
		  "flock -s '%s/use.lock' sleep 2 & holder=$!; sleep 0.3; "
		  "'%s' image rm waiter > '%s/rm.out' 2>&1 & rm=$!; sleep 1; "
		  "'%s' images | grep -c '^waiter ' ; kill -0 $rm && echo rm-waiting; "
		  "wait $holder; wait $rm; echo rm=$?; '%s' images | grep -c '^waiter '; true",
		  rn_root(), bin, dir, bin, bin);
	cr_expect(r == 0 && strstr(out, "1\nrm-waiting\nrm=0\n0\n") != NULL,
		  "image rm did not wait for the lock, or failed after it:\n%s", out);
}

RTEST(fs, export_container_and_image)
{
	const char *dir = getenv("STRATA_RT_DIR");
	int r = rn_strata(out, sizeof(out), "run --name ex1 busybox sh -c 'echo e > /exported; rm /bin/vi'");

	cr_assert_eq(r, 0, "%s", out);
	r = rn_strata(out, sizeof(out), "export ex1 %s/ex1.tar", dir);
	cr_assert_eq(r, 0, "%s", out);
	r = rn_sh(out, sizeof(out), "tar -tf %s/ex1.tar | grep -E '^(\\./)?(exported|bin/vi|bin/sh)$' | sed 's,^\\./,,' | sort", dir);
	cr_expect(r == 0 && !strcmp(out, "bin/sh\nexported\n"), "container export:\n%s", out);
	r = rn_strata(out, sizeof(out), "export busybox %s/bb.tar", dir);
	cr_expect_eq(r, 0, "%s", out);
	rn_strata(out, sizeof(out), "rm ex1");
}

/* :ro covers the whole bind, including what is mounted below its source:
 * a plain MS_REMOUNT|MS_RDONLY only reaches the top mount, and a tmpfs
 * under the source stayed writable. */
RTEST(fs, ro_volume_read_only_below_too)
{
	char host[256];
	int r, u;

	snprintf(host, sizeof(host), "%s/rov", getenv("STRATA_RT_DIR"));
	cr_assert_eq(rn_sh(out, sizeof(out), "mkdir -p %s/sub && mount -t tmpfs -o size=1m rovsub %s/sub",
			   host, host), 0, "%s", out);
	r = rn_strata(out, sizeof(out),
		      "run --rm -v %s:/ro:ro busybox sh -c 'touch /ro/top 2>/dev/null && echo TOP-WRITABLE; "
		      "touch /ro/sub/x 2>/dev/null && echo SUB-WRITABLE; true'", host);
	u = rn_sh(out + strlen(out), sizeof(out) - strlen(out), "umount %s/sub", host);
	cr_expect_eq(r, 0, "exit %d:\n%s", r, out);
	cr_expect_eq(u, 0, "umount: %s", out);
	cr_expect(!strstr(out, "TOP-WRITABLE"), "ro volume writable:\n%s", out);
	cr_expect(!strstr(out, "SUB-WRITABLE"), "mount below a ro volume writable:\n%s", out);
}
