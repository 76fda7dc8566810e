/* Docker's default device policy for a container's cgroups (see
 * cg_container_devices in cgroup_write.h).
 *
 * The cgroup is the one place that covers every way to reach a device:
 * a node made with mknod (CAP_MKNOD stays, as in docker), one in an image
 * layer, one in a bind-mounted volume.  A seccomp filter on mknod would
 * miss the last two.  v1 has the devices controller; cgroup2 has none and
 * asks a BPF program instead (as runc and crun do), which we load with
 * the raw bpf(2) syscall: the program is a dozen instructions. */
#include "cgroup_wio.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* One allowed char device; minor -1 for any. */
struct dev_rule {
	int major, minor;
};

static const struct dev_rule allowed[] = {
	{ 1, 3 }, { 1, 5 }, { 1, 7 }, { 1, 8 }, { 1, 9 }, /* null zero full random urandom */
	{ 5, 0 }, { 5, 1 }, { 5, 2 },                     /* tty console ptmx */
	{ 136, -1 },                                      /* the ptys of /dev/pts */
};

/* ---- v1: the devices controller ---- */

static int devices_v1(const char *dir, struct errbuf *e)
{
	char line[32];
	struct cgd d;
	int rc = cgd_open(&d, NULL, dir, e);

	/* Deny first: a new cgroup inherits "a *:* rwm" from strata/. */
	if (rc == 0)
		rc = put(&d, "devices.deny", "a", e);
	if (rc == 0)
		rc = put(&d, "devices.allow", "c *:* m", e);
	if (rc == 0)
		rc = put(&d, "devices.allow", "b *:* m", e);
	for (size_t i = 0; rc == 0 && i < NELEM(allowed); i++) {
		if (allowed[i].minor < 0)
			snprintf(line, sizeof(line), "c %d:* rwm", allowed[i].major);
		else
			snprintf(line, sizeof(line), "c %d:%d rwm", allowed[i].major,
				 allowed[i].minor);
		rc = put(&d, "devices.allow", line, e);
	}
	cgd_close(&d);
	return rc;
}

/* ---- cgroup2: a BPF_PROG_TYPE_CGROUP_DEVICE program ---- */

#define INSN(c, d, s, o, i) \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define LDX_W(dst, src, off) INSN(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0)
#define MOV_REG(dst, src) INSN(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOV_IMM(dst, imm) INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define AND_IMM(dst, imm) INSN(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm)
#define RSH_IMM(dst, imm) INSN(BPF_ALU64 | BPF_RSH | BPF_K, dst, 0, 0, imm)
#define JNE_IMM(dst, imm, off) INSN(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
#define EXIT INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* 10 for the head, at most 4 per rule, 2 for the tail. */
#define PROG_MAX (10 + 4 * NELEM(allowed) + 2)

/* r1 = struct bpf_cgroup_dev_ctx { access_type, major, minor }, where
 * access_type = access << 16 | type.  Returns 1 to allow, 0 to deny. */
static size_t build_prog(struct bpf_insn *p)
{
	size_t n = 0, to_deny;

	p[n++] = LDX_W(BPF_REG_2, BPF_REG_1, 0);
	p[n++] = MOV_REG(BPF_REG_3, BPF_REG_2);
	p[n++] = AND_IMM(BPF_REG_3, 0xffff);          /* r3 = type */
	p[n++] = RSH_IMM(BPF_REG_2, 16);              /* r2 = access */
	p[n++] = LDX_W(BPF_REG_4, BPF_REG_1, 4);      /* r4 = major */
	p[n++] = LDX_W(BPF_REG_5, BPF_REG_1, 8);      /* r5 = minor */
	/* mknod alone ("m" for every node, as docker): allowed. */
	p[n++] = JNE_IMM(BPF_REG_2, BPF_DEVCG_ACC_MKNOD, 2);
	p[n++] = MOV_IMM(BPF_REG_0, 1);
	p[n++] = EXIT;
	to_deny = n++; /* a block device: denied; patched below */
	for (size_t i = 0; i < NELEM(allowed); i++) {
		bool any = allowed[i].minor < 0;

		p[n++] = JNE_IMM(BPF_REG_4, allowed[i].major, any ? 2 : 3);
		if (!any)
			p[n++] = JNE_IMM(BPF_REG_5, allowed[i].minor, 2);
		p[n++] = MOV_IMM(BPF_REG_0, 1);
		p[n++] = EXIT;
	}
	p[to_deny] = JNE_IMM(BPF_REG_3, BPF_DEVCG_DEV_CHAR, (short)(n - to_deny - 1));
	p[n++] = MOV_IMM(BPF_REG_0, 0);
	p[n++] = EXIT;
	return n;
}

static int prog_load(struct errbuf *e)
{
	struct bpf_insn prog[PROG_MAX];
	char log[4096] = "";
	union bpf_attr a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = (uint32_t)build_prog(prog);
	a.license = (uint64_t)(uintptr_t)"GPL";
	a.log_buf = (uint64_t)(uintptr_t)log;
	a.log_size = sizeof(log);
	a.log_level = 1;
	fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	if (fd < 0)
		return fail(e, -errno, "loading the device policy's BPF program%s%.200s",
			    log[0] ? ": " : "", log);
	return fd;
}

static int devices_v2(const char *dir, struct errbuf *e)
{
	union bpf_attr a;
	struct cgd d;
	int prog, cg = -1, rc = cgd_open(&d, NULL, dir, e);

	if (rc < 0)
		return rc;
	if (!on_cgroupfs(d.fd)) {
		cgd_close(&d);
		return 0; /* a stand-in tree: nothing to attach to */
	}
	/* BPF_PROG_ATTACH wants the directory itself open, not an O_PATH. */
	cg = openat(d.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0)
		rc = fail(e, -errno, "opening %s", d.path);
	prog = rc == 0 ? prog_load(e) : -1;
	if (prog < 0 && rc == 0)
		rc = prog;
	if (rc == 0) {
		memset(&a, 0, sizeof(a));
		a.target_fd = (uint32_t)cg;
		a.attach_bpf_fd = (uint32_t)prog;
		a.attach_type = BPF_CGROUP_DEVICE;
		a.attach_flags = BPF_F_ALLOW_MULTI;
		/* The cgroup keeps the program until it is removed. */
		if (syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof(a)) < 0)
			rc = fail(e, -errno, "attaching the device policy to %s", d.path);
	}
	if (prog >= 0)
		close(prog);
	if (cg >= 0)
		close(cg);
	cgd_close(&d);
	return rc;
}

int cg_container_devices(const struct cg_container *c, char *err, size_t errlen)
{
	struct errbuf e = { err, errlen };
	int rc = 0;

	if (err && errlen)
		err[0] = '\0';
	if (!c->dev_dir && !c->v2_dir)
		return fail(&e, -ENODEV,
			    "no devices cgroup and no cgroup2 directory to enforce the device policy");
	/* Where v1's devices controller exists it already checks every
	 * process of the container: a BPF program on top would only add its
	 * verification (~0.7 ms of CPU) to every start. */
	if (c->dev_dir)
		rc = devices_v1(c->dev_dir, &e);
	else
		rc = devices_v2(c->v2_dir, &e);
	return rc;
}
