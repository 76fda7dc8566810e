/* Unit tests for procfs/view*.c: every virtual file rendered from this
 * machine's real /proc texts (captured as fixtures) and fake cgroup values,
 * checked field by field. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "view.h"

#define MiB (1024ULL * 1024)
#define NSEC 1000000000ULL

/* Captured from the development machine (2 CPUs, no swap). */
static const char HOST_MEMINFO[] =
	"MemTotal:       24684084 kB\n"
	"MemFree:        23053768 kB\n"
	"MemAvailable:   24266832 kB\n"
	"Buffers:          145780 kB\n"
	"Cached:          1244228 kB\n"
	"SwapCached:            0 kB\n"
	"Active:           468428 kB\n"
	"Inactive:         935396 kB\n"
	"Active(anon):       1400 kB\n"
	"Inactive(anon):    21428 kB\n"
	"Active(file):     467028 kB\n"
	"Inactive(file):   913968 kB\n"
	"Unevictable:       16032 kB\n"
	"Mlocked:           15108 kB\n"
	"SwapTotal:             0 kB\n"
	"SwapFree:              0 kB\n"
	"Zswap:                 0 kB\n"
	"Zswapped:              0 kB\n"
	"Dirty:              1276 kB\n"
	"Writeback:             0 kB\n"
	"AnonPages:         29988 kB\n"
	"Mapped:            16288 kB\n"
	"Shmem:              8872 kB\n"
	"KReclaimable:     101176 kB\n"
	"Slab:             128848 kB\n"
	"SReclaimable:     101176 kB\n"
	"SUnreclaim:        27672 kB\n"
	"KernelStack:        1680 kB\n"
	"PageTables:         1948 kB\n"
	"SecPageTables:         0 kB\n"
	"NFS_Unstable:          0 kB\n"
	"Bounce:                0 kB\n"
	"WritebackTmp:          0 kB\n"
	"CommitLimit:    12342040 kB\n"
	"Committed_AS:     135220 kB\n"
	"VmallocTotal:   34359738367 kB\n"
	"VmallocUsed:       14460 kB\n"
	"VmallocChunk:          0 kB\n"
	"Percpu:              712 kB\n"
	"AnonHugePages:         0 kB\n"
	"ShmemHugePages:        0 kB\n"
	"ShmemPmdMapped:        0 kB\n"
	"FileHugePages:     20480 kB\n"
	"FilePmdMapped:         0 kB\n"
	"Balloon:               0 kB\n"
	"HugePages_Total:       0\n"
	"HugePages_Free:        0\n"
	"HugePages_Rsvd:        0\n"
	"HugePages_Surp:        0\n"
	"Hugepagesize:       2048 kB\n"
	"Hugetlb:               0 kB\n"
	"DirectMap4k:       30720 kB\n"
	"DirectMap2M:     2066432 kB\n"
	"DirectMap1G:    25165824 kB\n";

static const char HOST_CPUINFO2[] =
	"processor\t: 0\n"
	"vendor_id\t: AuthenticAMD\n"
	"cpu family\t: 25\n"
	"model\t\t: 17\n"
	"model name\t: AMD EPYC\n"
	"stepping\t: 1\n"
	"microcode\t: 0x1000065\n"
	"cpu MHz\t\t: 2596.152\n"
	"cache size\t: 1024 KB\n"
	"physical id\t: 0\n"
	"siblings\t: 2\n"
	"core id\t\t: 0\n"
	"cpu cores\t: 2\n"
	"apicid\t\t: 0\n"
	"initial apicid\t: 0\n"
	"fpu\t\t: yes\n"
	"fpu_exception\t: yes\n"
	"cpuid level\t: 28\n"
	"wp\t\t: yes\n"
	"flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36"
	" clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc"
	" rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq"
	" ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx"
	" f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse"
	" 3dnowprefetch osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms"
	" invpcid avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni"
	" avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx512_bf16 clzero xsaveerptr arat"
	" avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg"
	" avx512_vpopcntdq rdpid fsrm\n"
	"bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass srso"
	" spectre_v2_user\n"
	"bogomips\t: 5192.30\n"
	"TLB size\t: 3584 4K pages\n"
	"clflush size\t: 64\n"
	"cache_alignment\t: 64\n"
	"address sizes\t: 48 bits physical, 48 bits virtual\n"
	"power management:\n"
	"\n"
	"processor\t: 1\n"
	"vendor_id\t: AuthenticAMD\n"
	"cpu family\t: 25\n"
	"model\t\t: 17\n"
	"model name\t: AMD EPYC\n"
	"stepping\t: 1\n"
	"microcode\t: 0x1000065\n"
	"cpu MHz\t\t: 2596.152\n"
	"cache size\t: 1024 KB\n"
	"physical id\t: 0\n"
	"siblings\t: 2\n"
	"core id\t\t: 1\n"
	"cpu cores\t: 2\n"
	"apicid\t\t: 1\n"
	"initial apicid\t: 1\n"
	"fpu\t\t: yes\n"
	"fpu_exception\t: yes\n"
	"cpuid level\t: 28\n"
	"wp\t\t: yes\n"
	"flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36"
	" clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc"
	" rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq"
	" ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx"
	" f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse"
	" 3dnowprefetch osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms"
	" invpcid avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni"
	" avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx512_bf16 clzero xsaveerptr arat"
	" avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg"
	" avx512_vpopcntdq rdpid fsrm\n"
	"bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass srso"
	" spectre_v2_user\n"
	"bogomips\t: 5192.30\n"
	"TLB size\t: 3584 4K pages\n"
	"clflush size\t: 64\n"
	"cache_alignment\t: 64\n"
	"address sizes\t: 48 bits physical, 48 bits virtual\n"
	"power management:\n"
	"\n";

static const char HOST_STAT2[] =
	"cpu  67978 0 144488 283274 4109 0 709 221 3 0\n"
	"cpu0 30664 0 63475 154042 1717 0 45 105 1 0\n"
	"cpu1 37314 0 81012 129231 2392 0 664 115 1 0\n"
	"intr 8325876 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 14 0 0 0 0 505 189 0"
	" 53 1 552809 0 3404 2396 0 3569 9678 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
	" 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
	" 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
	" 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
	" 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
	" 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
	" 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
	" 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
	" 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
	" 0 0 0 0 0 0 0 0 0 0 0 0\n"
	"ctxt 31315761\n"
	"btime 1795600638\n"
	"processes 79065\n"
	"procs_running 2\n"
	"procs_blocked 0\n"
	"softirq 2197490 0 225292 4 5699 552791 0 3 388297 0 1025404\n";

static const char HOST_DISKSTATS[] =
	"   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	"   7       1 loop1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	"   7       2 loop2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	"   7       3 loop3 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	"   7       4 loop4 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	"   7       5 loop5 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	"   7       6 loop6 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	"   7       7 loop7 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	" 254       0 vda 160345 24711 6900618 64453 235270 314903 10224888 127382 0 53864"
	" 220043 267659 16 9130344 26237 40149 1970\n"
	" 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

static const char HOST_UPTIME[] = "2112.38 2422.33\n";
static const char HOST_LOADAVG[] = "2.63 2.51 1.75 3/140 7195\n";
static const char SWAPS_HEADER[] = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

/* A 4-CPU x86 host, same machine type; %u: processor, core id, apicid x2. */
#define CPU_BLOCK                                                                     \
	"processor\t: %u\n"                                                           \
	"vendor_id\t: AuthenticAMD\n"                                                 \
	"cpu family\t: 25\n"                                                          \
	"model\t\t: 17\n"                                                             \
	"model name\t: AMD EPYC\n"                                                    \
	"stepping\t: 1\n"                                                             \
	"cpu MHz\t\t: 2596.152\n"                                                     \
	"cache size\t: 1024 KB\n"                                                     \
	"physical id\t: 0\n"                                                          \
	"siblings\t: 4\n"                                                             \
	"core id\t\t: %u\n"                                                           \
	"cpu cores\t: 4\n"                                                            \
	"apicid\t\t: %u\n"                                                            \
	"initial apicid\t: %u\n"                                                      \
	"fpu\t\t: yes\n"                                                              \
	"flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov\n"  \
	"bogomips\t: 5192.30\n"                                                       \
	"address sizes\t: 48 bits physical, 48 bits virtual\n"                        \
	"power management:\n"                                                         \
	"\n"

static const char STAT4_CPUS[] = "cpu  100000 20 50000 800000 3000 0 600 100 0 0\n"
				 "cpu0 25000 5 12500 200000 750 0 150 25 0 0\n"
				 "cpu1 25001 5 12501 200001 750 0 150 25 0 0\n"
				 "cpu2 25002 5 12502 200002 750 0 150 25 0 0\n"
				 "cpu3 24997 5 12497 199997 750 0 150 25 0 0\n";

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	cr_assert_geq(n, 0, "out of memory");
	return s;
}

/* Fixture texts are built once per test process and kept (reachable). */
static const char *cpuinfo4(void)
{
	static char *all;
	char *b[4];
	unsigned int i;

	if (all)
		return all;
	for (i = 0; i < 4; i++)
		b[i] = xasprintf(CPU_BLOCK, i, i, i, i);
	all = xasprintf("%s%s%s%s", b[0], b[1], b[2], b[3]);
	for (i = 0; i < 4; i++)
		free(b[i]);
	return all;
}

/* The real 2-CPU stat with the cpu lines of a 4-CPU host. */
static const char *stat4(void)
{
	static char *s;

	if (!s)
		s = xasprintf("%s%s", STAT4_CPUS, strstr(HOST_STAT2, "intr "));
	return s;
}

/* text with the line starting "key:" replaced by line (no newline). */
static char *replace_line(const char *text, const char *key, const char *line)
{
	const char *p = strstr(text, key), *e;

	cr_assert_not_null(p, "no %s in fixture", key);
	e = strchr(p, '\n');
	return xasprintf("%.*s%s%s", (int)(p - text), text, line, e);
}

static struct pf_host host2(void)
{
	struct pf_host h = { .host_cpus = 2, .clk_tck = 100, .host_uptime = 2112.38 };

	h.text[PF_MEMINFO] = HOST_MEMINFO;
	h.text[PF_CPUINFO] = HOST_CPUINFO2;
	h.text[PF_STAT] = HOST_STAT2;
	h.text[PF_UPTIME] = HOST_UPTIME;
	h.text[PF_LOADAVG] = HOST_LOADAVG;
	h.text[PF_DISKSTATS] = HOST_DISKSTATS;
	h.text[PF_SWAPS] = SWAPS_HEADER;
	h.text[PF_CPU_ONLINE] = "0-1\n";
	return h;
}

static struct pf_host host4(void)
{
	struct pf_host h = host2();

	h.host_cpus = 4;
	h.text[PF_CPUINFO] = cpuinfo4();
	h.text[PF_STAT] = stat4();
	h.text[PF_CPU_ONLINE] = "0-3\n";
	return h;
}

static char *render(enum pf_file f, const struct pf_host *h, const struct pf_reader *r)
{
	char *out = NULL;
	size_t len = 12345;
	int ret = pf_render(f, h, r, &out, &len);

	cr_assert_eq(ret, 0, "pf_render(%s) = %d", pf_file_path[f], ret);
	cr_assert_not_null(out);
	cr_assert_eq(len, strlen(out), "%s: len %zu, strlen %zu", pf_file_path[f], len,
		     strlen(out));
	return out;
}

static void assert_host(enum pf_file f, const struct pf_host *h, const struct pf_reader *r)
{
	char *out = render(f, h, r);

	cr_assert_str_eq(out, h->text[f], "%s is not the host's", pf_file_path[f]);
	free(out);
}

/* The line whose first word (ended by ':', blank or tab) is key. */
static const char *find_line(const char *text, const char *key)
{
	size_t n = strlen(key);
	const char *p;

	for (p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, n) && (p[n] == ':' || p[n] == ' ' || p[n] == '\t'))
			return p;
	return NULL;
}

/* A copy of that line without its newline (must exist). */
static char *get_line(const char *text, const char *key)
{
	const char *p = find_line(text, key);

	cr_assert_not_null(p, "no \"%s\" line in:\n%s", key, text);
	return strndup(p, strcspn(p, "\n"));
}

static void assert_line(const char *text, const char *key, const char *want)
{
	char *l = get_line(text, key);

	cr_assert_str_eq(l, want, "line %s: \"%s\", want \"%s\"", key, l, want);
	free(l);
}

static uint64_t mem_kb(const char *text, const char *key)
{
	const char *p = find_line(text, key);

	cr_assert_not_null(p, "no %s line", key);
	return strtoull(strchr(p, ':') + 1, NULL, 10);
}

/* The numbers of stat line name ("cpu", "cpu0", "intr"); returns how many. */
static unsigned int stat_nums(const char *text, const char *name, uint64_t *v, unsigned int max)
{
	const char *p = find_line(text, name);
	unsigned int n = 0;
	char *end;

	cr_assert_not_null(p, "no %s line", name);
	p += strlen(name);
	while (*p == ' ' && n < max) {
		v[n++] = strtoull(p, &end, 10);
		p = end;
	}
	return n;
}

static unsigned int count_prefix(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	unsigned int count = 0;
	const char *p;

	for (p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		count += !strncmp(p, prefix, n);
	return count;
}

/* Value of key in the k-th processor block of cpuinfo text. */
static char *cpu_field(const char *text, unsigned int k, const char *key)
{
	const char *p = text, *end;
	char *block, *v;
	unsigned int i;

	for (i = 0; i <= k; i++) {
		p = strstr(i ? p + 1 : p, "processor\t:");
		cr_assert_not_null(p, "no processor block %u", k);
	}
	end = strstr(p, "\n\n");
	block = strndup(p, end ? (size_t)(end - p + 1) : strlen(p));
	v = get_line(block, key);
	free(block);
	memmove(v, strchr(v, ':') + 2, strlen(strchr(v, ':') + 2) + 1);
	return v;
}

static void set_cpuset(struct pf_reader *r, const char *list)
{
	unsigned long a, b, i;
	const char *p = list;
	char *end;

	r->has_cpu = true;
	r->cpu.has_cpuset = true;
	r->cpu.quota_us = -1;
	memset(r->cpu.cpuset, 0, sizeof(r->cpu.cpuset));
	while (*p) {
		a = b = strtoul(p, &end, 10);
		if (*end == '-')
			b = strtoul(end + 1, &end, 10);
		for (i = a; i <= b; i++)
			r->cpu.cpuset[i / 64] |= 1ULL << (i % 64);
		p = *end == ',' ? end + 1 : end;
	}
}

static void set_quota(struct pf_reader *r, int64_t quota, uint64_t period)
{
	r->has_cpu = true;
	r->cpu.has_quota = true;
	r->cpu.quota_us = quota;
	r->cpu.period_us = period;
}

/* ---------------------------------------------------------------- api */

Test(api, paths_are_lxcfs_layout)
{
	cr_assert_str_eq(pf_file_path[PF_MEMINFO], "proc/meminfo");
	cr_assert_str_eq(pf_file_path[PF_CPUINFO], "proc/cpuinfo");
	cr_assert_str_eq(pf_file_path[PF_STAT], "proc/stat");
	cr_assert_str_eq(pf_file_path[PF_UPTIME], "proc/uptime");
	cr_assert_str_eq(pf_file_path[PF_LOADAVG], "proc/loadavg");
	cr_assert_str_eq(pf_file_path[PF_DISKSTATS], "proc/diskstats");
	cr_assert_str_eq(pf_file_path[PF_SWAPS], "proc/swaps");
	cr_assert_str_eq(pf_file_path[PF_CPU_ONLINE], "sys/devices/system/cpu/online");
}

Test(api, bad_arguments)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;
	size_t len;

	cr_assert_eq(pf_render(PF_NFILES, &h, &r, &out, &len), -EINVAL);
	cr_assert_eq(pf_render(PF_MEMINFO, NULL, &r, &out, &len), -EINVAL);
	cr_assert_eq(pf_render(PF_MEMINFO, &h, NULL, &out, &len), -EINVAL);
	cr_assert_eq(pf_render(PF_MEMINFO, &h, &r, NULL, &len), -EINVAL);
}

/* -------------------------------------------------------------- root */

Test(root, every_file_is_the_host_byte_for_byte)
{
	struct pf_host h = host4();
	struct pf_reader r = { .in_root_cgroup = true, .has_memory = true, .has_load = true,
			       .has_init_start = true, .init_start = 10 };
	int f;

	r.memory.has_limit = true;
	r.memory.limit = 256 * MiB;
	set_cpuset(&r, "1");
	for (f = 0; f < PF_NFILES; f++)
		assert_host(f, &h, &r);
}

Test(root, unreadable_host_file_is_eio)
{
	struct pf_host h = host2();
	struct pf_reader r = { .in_root_cgroup = true };
	char *out;
	size_t len;

	h.text[PF_STAT] = NULL;
	cr_assert_eq(pf_render(PF_STAT, &h, &r, &out, &len), -EIO);
}

/* ----------------------------------------------------------- meminfo */

/* 256M limit, 100M used, a realistic memory.stat. */
static void mem_256m(struct pf_reader *r)
{
	struct cg_memory *m = &r->memory;

	r->has_memory = true;
	m->has_limit = m->has_usage = m->has_stat = true;
	m->limit = 256 * MiB;
	m->swap_limit = CG_UNLIMITED;
	m->usage = 100 * MiB;
	m->anon = 70 * MiB;
	m->active_anon = 50 * MiB;
	m->inactive_anon = 20 * MiB;
	m->file = 20 * MiB;
	m->active_file = 12 * MiB;
	m->inactive_file = 8 * MiB;
	m->shmem = 1 * MiB;
	m->slab = 6 * MiB;
	m->slab_reclaimable = 2 * MiB;
	m->slab_unreclaimable = 4 * MiB;
	m->mapped_file = 5 * MiB;
	m->dirty = 1 * MiB;
	m->kernel_stack = 512 * 1024;
	m->pagetables = 1 * MiB;
}

Test(meminfo, limit_256m_usage_100m)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	mem_256m(&r);
	out = render(PF_MEMINFO, &h, &r);
	cr_assert_eq(mem_kb(out, "MemTotal"), 262144);
	cr_assert_eq(mem_kb(out, "MemFree"), 159744);
	/* free + active_file + inactive_file + slab_reclaimable */
	cr_assert_eq(mem_kb(out, "MemAvailable"), 159744 + 12288 + 8192 + 2048);
	cr_assert_eq(mem_kb(out, "Buffers"), 0);
	cr_assert_eq(mem_kb(out, "Cached"), 20480);
	cr_assert_eq(mem_kb(out, "SwapCached"), 0);
	cr_assert_eq(mem_kb(out, "Active"), 62 * 1024);
	cr_assert_eq(mem_kb(out, "Inactive"), 28 * 1024);
	cr_assert_eq(mem_kb(out, "Active(anon)"), 51200);
	cr_assert_eq(mem_kb(out, "Inactive(anon)"), 20480);
	cr_assert_eq(mem_kb(out, "Active(file)"), 12288);
	cr_assert_eq(mem_kb(out, "Inactive(file)"), 8192);
	cr_assert_eq(mem_kb(out, "Unevictable"), 0);
	cr_assert_eq(mem_kb(out, "AnonPages"), 71680);
	cr_assert_eq(mem_kb(out, "Mapped"), 5120);
	cr_assert_eq(mem_kb(out, "Dirty"), 1024);
	cr_assert_eq(mem_kb(out, "Shmem"), 1024);
	cr_assert_eq(mem_kb(out, "KReclaimable"), 2048);
	cr_assert_eq(mem_kb(out, "Slab"), 6144);
	cr_assert_eq(mem_kb(out, "SReclaimable"), 2048);
	cr_assert_eq(mem_kb(out, "SUnreclaim"), 4096);
	cr_assert_eq(mem_kb(out, "KernelStack"), 512);
	cr_assert_eq(mem_kb(out, "PageTables"), 1024);
	/* This host has no swap and there is no swap limit. */
	cr_assert_eq(mem_kb(out, "SwapTotal"), 0);
	cr_assert_eq(mem_kb(out, "SwapFree"), 0);
	/* The kernel's layout, exactly. */
	assert_line(out, "MemTotal", "MemTotal:         262144 kB");
	assert_line(out, "Buffers", "Buffers:               0 kB");
	assert_line(out, "Inactive(anon)", "Inactive(anon):    20480 kB");
	free(out);
}

Test(meminfo, lines_the_cgroup_cannot_know_stay_the_hosts)
{
	static const char *const keys[] = { "Mlocked", "Zswap", "CommitLimit", "Committed_AS",
					    "VmallocTotal", "Percpu", "HugePages_Total",
					    "Hugepagesize", "DirectMap4k", "DirectMap1G" };
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out, *want, *got;
	size_t i;

	mem_256m(&r);
	out = render(PF_MEMINFO, &h, &r);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		want = get_line(HOST_MEMINFO, keys[i]);
		got = get_line(out, keys[i]);
		cr_assert_str_eq(got, want);
		free(want);
		free(got);
	}
	free(out);
}

/* Splits "Key:   123 kB" as procps does; false: not such a line. */
static bool parse_mem_line(const char *line, char *key, size_t *num_end, bool *kb)
{
	const char *colon = strchr(line, ':'), *p;

	if (!colon || colon == line || (size_t)(colon - line) > 63)
		return false;
	memcpy(key, line, (size_t)(colon - line));
	key[colon - line] = '\0';
	for (p = colon + 1; *p == ' '; p++)
		;
	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	*num_end = (size_t)(p - line);
	*kb = !strcmp(p, " kB");
	return *kb || !*p;
}

Test(meminfo, same_keys_order_and_columns_as_the_host)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char hkey[64], okey[64], *out, *hs, *os, *hl, *ol, *hsave, *osave;
	size_t hend, oend;
	bool hkb, okb;
	unsigned int n = 0;

	mem_256m(&r);
	out = render(PF_MEMINFO, &h, &r);
	cr_assert_eq(out[strlen(out) - 1], '\n');
	hs = strdup(HOST_MEMINFO);
	os = strdup(out);
	hl = strtok_r(hs, "\n", &hsave);
	ol = strtok_r(os, "\n", &osave);
	for (; hl; hl = strtok_r(NULL, "\n", &hsave), ol = strtok_r(NULL, "\n", &osave), n++) {
		cr_assert_not_null(ol, "output ends at line %u", n);
		cr_assert(parse_mem_line(hl, hkey, &hend, &hkb), "host line %s", hl);
		cr_assert(parse_mem_line(ol, okey, &oend, &okb), "bad line \"%s\"", ol);
		cr_assert_str_eq(okey, hkey, "line %u", n);
		cr_assert_eq(okb, hkb, "unit of %s", okey);
		/* Numbers end in the column the kernel uses (values of at
		 * most 8 digits end at column 24, like the host's). */
		if (hend <= 24 && oend <= 24)
			cr_assert_eq(oend, hend, "%s: number ends at %zu, host %zu", okey, oend,
				     hend);
	}
	cr_assert_null(ol, "extra output lines");
	cr_assert_eq(n, count_prefix(HOST_MEMINFO, ""));
	free(hs);
	free(os);
	free(out);
}

/* The same check the way a shell script (or procps' sscanf) sees the file. */
Test(meminfo, awk_parses_every_line)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char path[] = "/tmp/test_procfs_view.XXXXXX", cmd[512], *out;
	FILE *f;
	int fd;

	mem_256m(&r);
	out = render(PF_MEMINFO, &h, &r);
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	f = fdopen(fd, "w");
	cr_assert_not_null(f);
	fputs(out, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "awk '!/^[A-Za-z0-9_()]+: +[0-9]+( kB)?$/ { bad++ }"
		 " $1 == \"MemTotal:\" && $2 != 262144 { bad++ }"
		 " $1 == \"MemFree:\" && $2 != 159744 { bad++ }"
		 " END { exit bad != 0 || NR != %u }' %s",
		 count_prefix(HOST_MEMINFO, ""), path);
	cr_assert_eq(system(cmd), 0, "awk rejected:\n%s", out);
	unlink(path);
	free(out);
}

Test(meminfo, huge_host_value_realigned_like_the_kernel)
{
	char *host = replace_line(HOST_MEMINFO, "MemTotal:", "MemTotal:       34359738367 kB");
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	h.text[PF_MEMINFO] = host;
	mem_256m(&r);
	out = render(PF_MEMINFO, &h, &r);
	assert_line(out, "MemTotal", "MemTotal:         262144 kB");
	free(out);
	free(host);
}

/* The host with two swaps (3 GiB) of which 1000000 kB are in use. */
static void host_with_swap(struct pf_host *h)
{
	static char *meminfo, *swaps;
	char *t;

	if (meminfo) {
		h->text[PF_MEMINFO] = meminfo;
		h->text[PF_SWAPS] = swaps;
		return;
	}
	t = replace_line(HOST_MEMINFO, "SwapTotal:", "SwapTotal:       3145720 kB");
	meminfo = replace_line(t, "SwapFree:", "SwapFree:        2145720 kB");
	free(t);
	h->text[PF_MEMINFO] = meminfo;
	h->text[PF_SWAPS] = swaps = xasprintf("%s%-40s%s\t%u\t%s%u\t%s%d\n%-40s%s\t%u\t%s%u\t%s%d\n",
				      SWAPS_HEADER, "/dev/vda2", "partition", 2097148, "",
				      999000, "\t", -2, "/swapfile", "file\t", 1048572, "",
				      1000, "\t\t", -3);
}

Test(meminfo, swap_limit)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	host_with_swap(&h);
	mem_256m(&r);
	r.memory.has_swap_limit = r.memory.has_swap_usage = true;
	r.memory.swap_limit = 64 * MiB;
	r.memory.swap_usage = 10 * MiB;
	out = render(PF_MEMINFO, &h, &r);
	cr_assert_eq(mem_kb(out, "SwapTotal"), 65536);
	cr_assert_eq(mem_kb(out, "SwapFree"), 65536 - 10240);
	assert_line(out, "SwapTotal", "SwapTotal:         65536 kB");
	free(out);
}

Test(meminfo, swap_limit_zero_is_no_swap)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	host_with_swap(&h);
	mem_256m(&r);
	r.memory.has_swap_limit = r.memory.has_swap_usage = true;
	r.memory.swap_limit = 0;
	out = render(PF_MEMINFO, &h, &r);
	cr_assert_eq(mem_kb(out, "SwapTotal"), 0);
	cr_assert_eq(mem_kb(out, "SwapFree"), 0);
	free(out);
}

Test(meminfo, swap_unlimited_is_the_hosts_size_minus_own_use)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	host_with_swap(&h);
	mem_256m(&r);
	r.memory.has_swap_limit = r.memory.has_swap_usage = true;
	r.memory.swap_limit = CG_UNLIMITED;
	r.memory.swap_usage = 10 * MiB;
	out = render(PF_MEMINFO, &h, &r);
	cr_assert_eq(mem_kb(out, "SwapTotal"), 3145720);
	cr_assert_eq(mem_kb(out, "SwapFree"), 3145720 - 10240);
	cr_assert_eq(mem_kb(out, "MemTotal"), 262144);
	free(out);
}

Test(meminfo, swap_limit_only_keeps_host_memtotal)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	host_with_swap(&h);
	mem_256m(&r);
	r.memory.limit = CG_UNLIMITED;
	r.memory.has_swap_limit = true;
	r.memory.swap_limit = 64 * MiB;
	out = render(PF_MEMINFO, &h, &r);
	cr_assert_eq(mem_kb(out, "MemTotal"), 24684084);
	cr_assert_eq(mem_kb(out, "MemFree"), 24684084 - 102400);
	cr_assert_eq(mem_kb(out, "SwapTotal"), 65536);
	cr_assert_eq(mem_kb(out, "SwapFree"), 65536);
	free(out);
}

Test(meminfo, no_limit_is_the_host_file)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };

	mem_256m(&r);
	r.memory.limit = CG_UNLIMITED;
	assert_host(PF_MEMINFO, &h, &r);
	r.memory.limit = 64ULL * 1024 * MiB; /* above the host's 23.5 GiB */
	assert_host(PF_MEMINFO, &h, &r);
	r.memory.has_limit = false;
	assert_host(PF_MEMINFO, &h, &r);
	host_with_swap(&h);
	r.memory.has_swap_limit = true;
	r.memory.swap_limit = 4096 * MiB; /* above the host's 3 GiB */
	assert_host(PF_MEMINFO, &h, &r);
}

Test(meminfo, no_memory_info_is_the_host_file)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };

	set_cpuset(&r, "0");
	assert_host(PF_MEMINFO, &h, &r);
}

Test(meminfo, usage_above_limit_never_negative)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	mem_256m(&r);
	r.memory.usage = 300 * MiB;
	out = render(PF_MEMINFO, &h, &r);
	cr_assert_eq(mem_kb(out, "MemFree"), 0);
	cr_assert_eq(mem_kb(out, "MemAvailable"), 12288 + 8192 + 2048);
	free(out);
}

Test(meminfo, available_never_above_total)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	mem_256m(&r);
	r.memory.usage = 10 * MiB;
	r.memory.active_file = 300 * MiB;
	out = render(PF_MEMINFO, &h, &r);
	cr_assert_eq(mem_kb(out, "MemAvailable"), 262144);
	free(out);
}

Test(meminfo, unknown_stat_is_zero_not_the_hosts)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	mem_256m(&r);
	r.memory.has_stat = false;
	out = render(PF_MEMINFO, &h, &r);
	cr_assert_eq(mem_kb(out, "MemFree"), 159744);
	cr_assert_eq(mem_kb(out, "MemAvailable"), 159744);
	cr_assert_eq(mem_kb(out, "Cached"), 0);
	cr_assert_eq(mem_kb(out, "Active(file)"), 0);
	free(out);
}

Test(meminfo, unreadable_host_meminfo_is_eio)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;
	size_t len;

	mem_256m(&r);
	h.text[PF_MEMINFO] = NULL;
	cr_assert_eq(pf_render(PF_MEMINFO, &h, &r, &out, &len), -EIO);
}

/* ------------------------------------------------------------- swaps */

Test(swaps, cut_to_the_swap_limit)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out, *want;

	host_with_swap(&h);
	mem_256m(&r);
	r.memory.has_swap_limit = r.memory.has_swap_usage = true;
	r.memory.swap_limit = 64 * MiB;
	r.memory.swap_usage = 10 * MiB;
	out = render(PF_SWAPS, &h, &r);
	want = xasprintf("%s%-40s%s\t%u\t\t%u\t\t%d\n", SWAPS_HEADER, "/dev/vda2", "partition",
			 65536, 10240, -2);
	cr_assert_str_eq(out, want);
	free(want);
	free(out);
}

Test(swaps, limit_spans_two_swaps)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out, *want;

	host_with_swap(&h);
	mem_256m(&r);
	r.memory.has_swap_limit = r.memory.has_swap_usage = true;
	r.memory.swap_limit = 2560 * MiB; /* 2621440 kB */
	r.memory.swap_usage = 2100000 * 1024ULL;
	out = render(PF_SWAPS, &h, &r);
	want = xasprintf("%s%-40s%s\t%u\t\t%u\t\t%d\n%-40s%s\t%u\t\t%u\t\t%d\n", SWAPS_HEADER,
			 "/dev/vda2", "partition", 2097148, 2097148, -2, "/swapfile", "file\t",
			 2621440 - 2097148, 2100000 - 2097148, -3);
	cr_assert_str_eq(out, want);
	free(want);
	free(out);
}

Test(swaps, zero_limit_or_no_host_swap_is_header_only)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	mem_256m(&r);
	out = render(PF_SWAPS, &h, &r); /* host without swap */
	cr_assert_str_eq(out, SWAPS_HEADER);
	free(out);
	host_with_swap(&h);
	r.memory.has_swap_limit = true;
	r.memory.swap_limit = 0;
	out = render(PF_SWAPS, &h, &r);
	cr_assert_str_eq(out, SWAPS_HEADER);
	free(out);
}

Test(swaps, agrees_with_meminfo_when_swap_unlimited)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out, *want;

	host_with_swap(&h);
	mem_256m(&r);
	r.memory.has_swap_usage = true;
	r.memory.swap_usage = 10 * MiB;
	out = render(PF_SWAPS, &h, &r);
	want = xasprintf("%s%-40s%s\t%u\t\t%u\t\t%d\n%-40s%s\t%u\t\t%u\t\t%d\n", SWAPS_HEADER,
			 "/dev/vda2", "partition", 2097148, 10240, -2, "/swapfile", "file\t",
			 1048572, 0, -3);
	cr_assert_str_eq(out, want);
	free(want);
	free(out);
}

Test(swaps, no_limits_is_the_host_file)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };

	host_with_swap(&h);
	assert_host(PF_SWAPS, &h, &r);
	mem_256m(&r);
	r.memory.limit = CG_UNLIMITED;
	assert_host(PF_SWAPS, &h, &r);
}

/* ----------------------------------------------------------- cpuinfo */

Test(cpuinfo, one_cpu_of_two_is_the_hosts_block_renumbered)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out, *want;

	set_cpuset(&r, "1");
	out = render(PF_CPUINFO, &h, &r);
	want = replace_line(strstr(HOST_CPUINFO2, "processor\t: 1"), "processor",
			    "processor\t: 0");
	cr_assert_str_eq(out, want);
	free(want);
	free(out);
}

/* cpuset, quota (us per 100 ms; -1: none), the host CPU ids expected. */
struct cpu_case {
	const char *cpuset;
	int64_t quota;
	unsigned int n, ids[4];
	const char *online;
};

static const struct cpu_case cpu_cases[] = {
	{ "0", -1, 1, { 0 }, "0\n" },
	{ "0-1", -1, 2, { 0, 1 }, "0-1\n" },
	{ "1,3", -1, 2, { 1, 3 }, "0-1\n" },
	{ "0-3", 50000, 1, { 0 }, "0\n" },
	{ "0-3", 150000, 2, { 0, 1 }, "0-1\n" },
	{ "1,3", 50000, 1, { 1 }, "0\n" },
	{ "1,3", 150000, 2, { 1, 3 }, "0-1\n" },
	{ "2", 150000, 1, { 2 }, "0\n" },
	{ NULL, 50000, 1, { 0 }, "0\n" }, /* quota without a cpuset */
	{ NULL, 250000, 3, { 0, 1, 2 }, "0-2\n" },
};

static void check_cpu_case(const struct cpu_case *c)
{
	struct pf_host h = host4();
	struct pf_reader r = { 0 };
	char *info, *stat, *online, *v, name[16];
	unsigned int k;

	if (c->cpuset)
		set_cpuset(&r, c->cpuset);
	if (c->quota > 0)
		set_quota(&r, c->quota, 100000);
	info = render(PF_CPUINFO, &h, &r);
	stat = render(PF_STAT, &h, &r);
	online = render(PF_CPU_ONLINE, &h, &r);
	cr_assert_eq(count_prefix(info, "processor\t:"), c->n, "cpuset %s quota %ld: %s",
		     c->cpuset, (long)c->quota, info);
	cr_assert_eq(count_prefix(stat, "cpu") - 1, c->n, "cpuset %s quota %ld", c->cpuset,
		     (long)c->quota);
	cr_assert_str_eq(online, c->online, "cpuset %s quota %ld", c->cpuset, (long)c->quota);
	for (k = 0; k < c->n; k++) {
		v = cpu_field(info, k, "processor");
		cr_assert_eq(strtoul(v, NULL, 10), k);
		free(v);
		/* Other fields come from the host block of the same CPU. */
		v = cpu_field(info, k, "core id");
		cr_assert_eq(strtoul(v, NULL, 10), c->ids[k], "cpuset %s cpu %u", c->cpuset, k);
		free(v);
		v = cpu_field(info, k, "flags");
		cr_assert_str_eq(v, "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov");
		free(v);
		snprintf(name, sizeof(name), "cpu%u", k);
		cr_assert_not_null(find_line(stat, name));
	}
	free(info);
	free(stat);
	free(online);
}

Test(cpuinfo, cpusets_and_quotas_agree_with_stat_and_online)
{
	size_t i;

	for (i = 0; i < sizeof(cpu_cases) / sizeof(cpu_cases[0]); i++)
		check_cpu_case(&cpu_cases[i]);
}

Test(cpuinfo, no_cpu_limit_is_the_host_file)
{
	struct pf_host h = host4();
	struct pf_reader r = { 0 };

	assert_host(PF_CPUINFO, &h, &r);
	set_cpuset(&r, "0-3");
	assert_host(PF_CPUINFO, &h, &r);
	assert_host(PF_CPU_ONLINE, &h, &r);
	set_quota(&r, -1, 100000);
	assert_host(PF_CPUINFO, &h, &r);
	set_quota(&r, 400000, 100000); /* 4 CPUs' worth on 4 CPUs */
	assert_host(PF_CPUINFO, &h, &r);
	assert_host(PF_STAT, &h, &r);
}

Test(cpuinfo, quota_1_5_on_two_cpus_keeps_both)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	set_quota(&r, 150000, 100000);
	out = render(PF_CPUINFO, &h, &r);
	cr_assert_str_eq(out, HOST_CPUINFO2);
	free(out);
	out = render(PF_CPU_ONLINE, &h, &r);
	cr_assert_str_eq(out, "0-1\n");
	free(out);
}

Test(cpuinfo, unreadable_host_cpuinfo_is_eio)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;
	size_t len;

	set_cpuset(&r, "0");
	h.text[PF_CPUINFO] = NULL;
	cr_assert_eq(pf_render(PF_CPUINFO, &h, &r, &out, &len), -EIO);
}

/* ------------------------------------------------------------ online */

Test(online, host_with_an_offline_cpu)
{
	struct pf_host h = host4();
	struct pf_reader r = { 0 };
	char *out;

	h.text[PF_CPU_ONLINE] = "0,2-3\n";
	assert_host(PF_CPU_ONLINE, &h, &r);
	set_cpuset(&r, "0-3"); /* the offline CPU is not visible */
	assert_host(PF_CPU_ONLINE, &h, &r);
	set_cpuset(&r, "2-3");
	out = render(PF_CPU_ONLINE, &h, &r);
	cr_assert_str_eq(out, "0-1\n");
	free(out);
	out = render(PF_CPUINFO, &h, &r);
	cr_assert_eq(count_prefix(out, "processor"), 2);
	free(out);
	set_cpuset(&r, "1"); /* only the offline CPU: fall back to all */
	assert_host(PF_CPU_ONLINE, &h, &r);
}

/* -------------------------------------------------------------- stat */

/* v1 on the 4-CPU host, cpuset 1,3, init started 100 s ago: per-CPU usage
 * 2 s (cpu 1) and 1 s (cpu 3), 0.5 s left on cpu 0 from before the
 * cpuset changed, user:system 3:1, 0.4 s throttled. */
static void cpu_v1(struct pf_host *h, struct pf_reader *r)
{
	*h = host4();
	h->host_uptime = 1000;
	set_cpuset(r, "1,3");
	r->has_init_start = true;
	r->init_start = 900;
	r->cpu.has_usage = r->cpu.has_percpu = r->cpu.has_userSys = true;
	r->cpu.has_throttled = true;
	r->cpu.percpu_ns[0] = NSEC / 2;
	r->cpu.percpu_ns[1] = 2 * NSEC;
	r->cpu.percpu_ns[3] = 1 * NSEC;
	r->cpu.usage_ns = 3 * NSEC + NSEC / 2;
	r->cpu.user_ns = 3 * NSEC;
	r->cpu.system_ns = 1 * NSEC;
	r->cpu.throttled_ns = 4 * NSEC / 10;
}

Test(stat, v1_percpu_usage_split_by_user_system)
{
	struct pf_host h;
	struct pf_reader r = { 0 };
	char *out;

	cpu_v1(&h, &r);
	out = render(PF_STAT, &h, &r);
	/* cpu0 = host cpu 1: 2 s + 0.25 s hidden = 225 ticks, 3/4 user;
	 * 20 ticks steal; idle = 10000 - 225 - 20. */
	assert_line(out, "cpu0", "cpu0 169 0 56 9755 0 0 0 20 0 0");
	assert_line(out, "cpu1", "cpu1 94 0 31 9855 0 0 0 20 0 0");
	assert_line(out, "cpu", "cpu  263 0 87 19610 0 0 0 40 0 0");
	cr_assert_null(find_line(out, "cpu2"));
	free(out);
}

Test(stat, v2_totals_spread_evenly)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	set_quota(&r, 150000, 100000);
	r.cpu.has_usage = r.cpu.has_userSys = true;
	r.cpu.usage_ns = 3 * NSEC;
	r.cpu.user_ns = 2 * NSEC;
	r.cpu.system_ns = 1 * NSEC;
	out = render(PF_STAT, &h, &r);
	/* No init start: elapsed = host uptime, 211238 ticks per CPU. */
	assert_line(out, "cpu0", "cpu0 100 0 50 211088 0 0 0 0 0 0");
	assert_line(out, "cpu1", "cpu1 100 0 50 211088 0 0 0 0 0 0");
	assert_line(out, "cpu", "cpu  200 0 100 422176 0 0 0 0 0 0");
	free(out);
}

Test(stat, busy_never_above_elapsed)
{
	struct pf_host h;
	struct pf_reader r = { 0 };
	uint64_t v[10];
	char *out;

	cpu_v1(&h, &r);
	set_cpuset(&r, "1");
	r.cpu.percpu_ns[0] = 0;
	r.cpu.percpu_ns[3] = 0;
	r.cpu.percpu_ns[1] = 200 * NSEC; /* 200 s in 100 s on one CPU */
	out = render(PF_STAT, &h, &r);
	cr_assert_eq(stat_nums(out, "cpu0", v, 10), 10);
	cr_assert_eq(v[0] + v[2], 10000);
	cr_assert_eq(v[3], 0);
	cr_assert_eq(v[7], 0);
	free(out);
}

Test(stat, other_lines)
{
	struct pf_host h;
	struct pf_reader r = { 0 };
	static const char *const host_keys[] = { "btime", "processes", "procs_running",
						 "procs_blocked" };
	uint64_t hv[1024], v[1024];
	unsigned int n, i;
	char *out, *want;

	cpu_v1(&h, &r);
	out = render(PF_STAT, &h, &r);
	/* Not accounted per cgroup: honest zeros, the host's columns. */
	n = stat_nums(HOST_STAT2, "intr", hv, 1024);
	cr_assert_eq(stat_nums(out, "intr", v, 1024), n);
	for (i = 0; i < n; i++)
		cr_assert_eq(v[i], 0);
	n = stat_nums(HOST_STAT2, "softirq", hv, 1024);
	cr_assert_eq(stat_nums(out, "softirq", v, 1024), n);
	for (i = 0; i < n; i++)
		cr_assert_eq(v[i], 0);
	assert_line(out, "ctxt", "ctxt 0");
	/* btime stays the host's; without the load sampler, so do the
	 * process counts (as loadavg then does). */
	for (i = 0; i < 4; i++) {
		want = get_line(HOST_STAT2, host_keys[i]);
		assert_line(out, host_keys[i], want);
		free(want);
	}
	cr_assert_eq(out[strlen(out) - 1], '\n');
	free(out);

	r.has_load = true;
	r.running = 3;
	r.total = 40;
	r.blocked = 1;
	r.last_pid = 1234;
	out = render(PF_STAT, &h, &r);
	assert_line(out, "processes", "processes 1234");
	assert_line(out, "procs_running", "procs_running 3");
	assert_line(out, "procs_blocked", "procs_blocked 1");
	free(out);
}

static void stat_read(const struct pf_host *h, const struct pf_reader *r, uint64_t v[3][10])
{
	static const char *const names[] = { "cpu", "cpu0", "cpu1" };
	char *out = render(PF_STAT, h, r);
	int i;

	for (i = 0; i < 3; i++)
		cr_assert_eq(stat_nums(out, names[i], v[i], 10), 10);
	free(out);
}

static void assert_not_backwards(uint64_t a[3][10], uint64_t b[3][10])
{
	int i, j;

	for (i = 0; i < 3; i++)
		for (j = 0; j < 10; j++)
			cr_assert_geq(b[i][j], a[i][j], "line %d field %d went %lu -> %lu", i, j,
				      (unsigned long)a[i][j], (unsigned long)b[i][j]);
}

Test(stat, monotonic_across_reads)
{
	struct pf_stat_state *st = calloc(1, sizeof(*st));
	uint64_t a[3][10], b[3][10], c[3][10], grow;
	struct pf_host h;
	struct pf_reader r = { 0 };

	cr_assert_not_null(st);
	cpu_v1(&h, &r);
	r.stat_state = st;
	stat_read(&h, &r, a);
	cr_assert(st->valid);
	cr_assert_eq(a[1][3], 9755);

	/* 1 s later the cgroup's counters went backwards (a recreated
	 * cgroup, a racy read): nothing the reader sees does. */
	h.host_uptime = 1001;
	r.cpu.percpu_ns[1] = 1 * NSEC;
	r.cpu.user_ns = 1 * NSEC;
	r.cpu.system_ns = 3 * NSEC;
	r.cpu.throttled_ns = 0;
	stat_read(&h, &r, b);
	assert_not_backwards(a, b);

	/* 1 s later, 8 s of usage on one CPU: busy grows by 1 s at most,
	 * and idle still does not go back. */
	h.host_uptime = 1002;
	r.cpu.percpu_ns[1] = 9 * NSEC;
	stat_read(&h, &r, c);
	assert_not_backwards(b, c);
	grow = (c[1][0] - b[1][0]) + (c[1][2] - b[1][2]) + (c[1][7] - b[1][7]);
	cr_assert_leq(grow, 100, "busy grew %lu ticks in 100", (unsigned long)grow);
	cr_assert_gt(grow, 90);
	free(st);
}

Test(stat, idle_tracks_the_wall_clock)
{
	struct pf_stat_state *st = calloc(1, sizeof(*st));
	uint64_t a[3][10], b[3][10], total_a = 0, total_b = 0;
	struct pf_host h;
	struct pf_reader r = { 0 };
	int j;

	cr_assert_not_null(st);
	cpu_v1(&h, &r);
	r.stat_state = st;
	stat_read(&h, &r, a);
	/* 5 s later, cpu 1 was busy half of the time: top sees 50 %. */
	h.host_uptime = 1005;
	r.cpu.percpu_ns[1] += 5 * NSEC / 2;
	stat_read(&h, &r, b);
	for (j = 0; j < 10; j++) {
		total_a += a[1][j];
		total_b += b[1][j];
	}
	cr_assert_eq(total_b - total_a, 500);
	cr_assert_eq((b[1][0] - a[1][0]) + (b[1][2] - a[1][2]), 250);
	free(st);
}

Test(stat, no_cgroup_usage_uses_the_visible_host_cpus)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	char *host1 = get_line(HOST_STAT2, "cpu1"), *want;

	set_cpuset(&r, "1");
	out = render(PF_STAT, &h, &r);
	want = xasprintf("cpu0%s", host1 + 4);
	assert_line(out, "cpu0", want);
	free(want);
	want = xasprintf("cpu %s", host1 + 4);
	assert_line(out, "cpu", want);
	free(want);
	cr_assert_null(find_line(out, "cpu1"));
	free(host1);
	free(out);
}

Test(stat, no_cpu_limit_is_the_host_file)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };

	assert_host(PF_STAT, &h, &r);
	set_cpuset(&r, "0-1");
	r.cpu.has_usage = true;
	r.cpu.usage_ns = 5 * NSEC;
	assert_host(PF_STAT, &h, &r);
}

Test(stat, old_kernel_without_steal_column)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	h.host_uptime = 100;
	h.text[PF_STAT] = "cpu  10 0 10 100 0 0 0\ncpu0 5 0 5 50 0 0 0\ncpu1 5 0 5 50 0 0 0\n"
			  "btime 5\n";
	set_cpuset(&r, "0");
	r.cpu.has_usage = r.cpu.has_throttled = true;
	r.cpu.usage_ns = 10 * NSEC;
	r.cpu.throttled_ns = 2 * NSEC;
	out = render(PF_STAT, &h, &r);
	/* Throttled time joins idle when there is no steal column. */
	cr_assert_str_eq(out, "cpu  1000 0 0 9000 0 0 0\ncpu0 1000 0 0 9000 0 0 0\nbtime 5\n");
	free(out);
}

/* ------------------------------------------------------------ uptime */

Test(uptime, since_init_with_idle_as_in_stat)
{
	struct pf_host h;
	struct pf_reader r = { 0 };
	char *out;

	cpu_v1(&h, &r);
	out = render(PF_UPTIME, &h, &r);
	/* idle = (9755 + 9855) ticks, as the stat lines show */
	cr_assert_str_eq(out, "100.00 196.10\n");
	free(out);
}

Test(uptime, uptime_does_not_advance_the_stat_state)
{
	struct pf_stat_state *st = calloc(1, sizeof(*st)), *copy = malloc(sizeof(*st));
	struct pf_host h;
	struct pf_reader r = { 0 };
	char *out;

	cr_assert(st && copy);
	cpu_v1(&h, &r);
	r.stat_state = st;
	free(render(PF_STAT, &h, &r));
	memcpy(copy, st, sizeof(*st));
	h.host_uptime = 1010;
	out = render(PF_UPTIME, &h, &r);
	cr_assert_str_eq(out, "110.00 216.10\n");
	cr_assert_eq(memcmp(copy, st, sizeof(*st)), 0);
	free(out);
	free(st);
	free(copy);
}

Test(uptime, no_cpu_limit_uses_the_hosts_idle_share)
{
	struct pf_host h = host2();
	struct pf_reader r = { .has_init_start = true, .init_start = 2000 };
	char *out, want[64];
	double up = 2112.38 - 2000;

	out = render(PF_UPTIME, &h, &r);
	snprintf(want, sizeof(want), "%.2f %.2f\n", up, 2422.33 / (2112.38 * 2) * up * 2);
	cr_assert_str_eq(out, want);
	cr_assert_str_eq(out, "112.38 128.87\n");
	free(out);
}

Test(uptime, idle_at_most_uptime_times_cpus)
{
	struct pf_host h;
	struct pf_reader r = { 0 };
	double up, idle;
	char *out;

	cpu_v1(&h, &r);
	r.cpu.percpu_ns[0] = r.cpu.percpu_ns[1] = r.cpu.percpu_ns[3] = 0;
	out = render(PF_UPTIME, &h, &r);
	cr_assert_eq(sscanf(out, "%lf %lf", &up, &idle), 2);
	cr_assert_float_eq(up, 100.0, 1e-9);
	cr_assert_leq(idle, up * 2);
	cr_assert_float_eq(idle, 199.6, 1e-9); /* 40 ticks of steal */
	free(out);
}

Test(uptime, no_init_start_is_the_host_file)
{
	struct pf_host h;
	struct pf_reader r = { 0 };

	cpu_v1(&h, &r);
	r.has_init_start = false;
	assert_host(PF_UPTIME, &h, &r);
}

Test(uptime, init_in_the_future_is_zero)
{
	struct pf_host h;
	struct pf_reader r = { 0 };
	char *out;

	cpu_v1(&h, &r);
	r.init_start = 2000;
	out = render(PF_UPTIME, &h, &r);
	cr_assert_str_eq(out, "0.00 0.00\n");
	free(out);
}

/* ----------------------------------------------------------- loadavg */

Test(loadavg, from_the_sampler)
{
	struct pf_host h = host2();
	struct pf_reader r = { .has_load = true, .load = { 0.5, 0.25, 1.0 / 3 },
			       .running = 2, .total = 17, .last_pid = 42 };
	char *out;

	out = render(PF_LOADAVG, &h, &r);
	cr_assert_str_eq(out, "0.50 0.25 0.33 2/17 42\n");
	free(out);
	r.load[0] = 12.345;
	r.load[1] = NAN;
	r.load[2] = -1;
	out = render(PF_LOADAVG, &h, &r);
	cr_assert_str_eq(out, "12.35 0.00 0.00 2/17 42\n");
	free(out);
}

Test(loadavg, sampler_off_is_the_host_file)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };

	mem_256m(&r);
	assert_host(PF_LOADAVG, &h, &r);
}

/* --------------------------------------------------------- diskstats */

Test(diskstats, only_the_cgroups_devices)
{
	struct cg_io_dev io[] = {
		{ .major = 254, .minor = 0, .rbytes = 1 * MiB, .rios = 10, .wbytes = 12288,
		  .wios = 3, .dbytes = 4096, .dios = 1 },
		{ .major = 8, .minor = 0, .rbytes = 512, .rios = 1 }, /* not on the host */
	};
	struct pf_host h = host2();
	struct pf_reader r = { .io = io, .nio = 2 };
	char *out;

	out = render(PF_DISKSTATS, &h, &r);
	cr_assert_str_eq(out, " 254       0 vda 10 0 2048 0 3 0 24 0 0 0 0 1 0 8 0 0 0\n");
	free(out);
}

Test(diskstats, no_io_is_empty_unknown_is_the_host_file)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out;

	out = render(PF_DISKSTATS, &h, &r);
	cr_assert_str_eq(out, "");
	free(out);
	r.nio = -ENOENT;
	assert_host(PF_DISKSTATS, &h, &r);
}

Test(swaps, without_the_host_meminfo)
{
	struct pf_host h = host2();
	struct pf_reader r = { 0 };
	char *out, *want;

	host_with_swap(&h);
	h.text[PF_MEMINFO] = NULL; /* the daemon passes only the file rendered */
	mem_256m(&r);
	r.memory.has_swap_limit = r.memory.has_swap_usage = true;
	r.memory.swap_limit = 64 * MiB;
	r.memory.swap_usage = 10 * MiB;
	out = render(PF_SWAPS, &h, &r);
	want = xasprintf("%s%-40s%s\t%u\t\t%u\t\t%d\n", SWAPS_HEADER, "/dev/vda2", "partition",
			 65536, 10240, -2);
	cr_assert_str_eq(out, want);
	free(want);
	free(out);
	r.memory.limit = CG_UNLIMITED;
	r.memory.swap_limit = 4096 * MiB; /* above the swaps' 3 GiB */
	assert_host(PF_SWAPS, &h, &r);
}
