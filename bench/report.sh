#!/usr/bin/env bash
# bench/report.sh OUT GROUP...: tables (GROUP.md), charts (GROUP.svg) and
# the one-line summary (summary.txt) from OUT/raw.tsv; report.md is all of
# it with the machine and the options. Plain awk (mawk is enough) and gnuplot.
set -u -o pipefail
OUT=${1:?usage: report.sh OUT GROUP...}
shift
RAW=$OUT/raw.tsv
[[ -s $RAW ]] || { echo "report.sh: no $RAW" >&2; exit 1; }

# Per (group, workload, system): n, median, min, max, p90 of the passing
# values, and the failures. Input sorted by value within each key.
sort -t $'\t' -k1,1 -k2,2 -k3,3 -k5,5g "$RAW" | awk -F '\t' -v OFS='\t' '
function flush() {
	if (key == "") return
	if (n > 0) {
		med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		r = int(0.9 * n); if (r < 0.9 * n) r++
		print k1, k2, k3, n, med, v[1], v[n], v[r], unit, fails
	} else
		print k1, k2, k3, 0, "", "", "", "", unit, fails
}
{
	k = $1 SUBSEP $2 SUBSEP $3
	if (k != key) { flush(); key = k; k1 = $1; k2 = $2; k3 = $3; n = 0; fails = 0 }
	unit = $6
	if ($7 == "ok") v[++n] = $5; else fails++
}
END { flush() }' >"$OUT/stats.tsv"

# Orders of first appearance: workloads and systems per group.
awk -F '\t' '!(($1, $2) in w) { w[$1, $2] = 1; print $1 "\tW\t" $2 }
	!(($1, $3) in s) { s[$1, $3] = 1; print $1 "\tS\t" $3 }' "$RAW" >"$OUT/order.tsv"

# table GROUP REF KIND: the markdown table(s) and the chart data.
# KIND union: ratio of medians to REF (time; rates inverted), then the
# absolute medians; resources apart. procfs: rates, and ratios to REF.
# runner: median, p90, ratio to REF.
table() {
	awk -F '\t' -v G="$1" -v REF="$2" -v KIND="$3" -v DAT="$OUT/$1.dat" -v SUM="$OUT/$1.summary" '
	function fmtv(x, u) {
		if (u == "s") return x >= 10 ? sprintf("%.1f s", x) : x >= 0.1 ? sprintf("%.3f s", x) : sprintf("%.2f ms", x * 1000)
		if (u == "ops/s") return sprintf("%d/s", x + 0.5)
		return sprintf("%d %s", x + 0.5, u)
	}
	function spread(k) { return med[k] > 0 ? sprintf(" ±%.0f%%", 50 * (mx[k] - mn[k]) / med[k]) : "" }
	# slowdown of S against REF for workload W (>1: slower); "" if unknown
	function ratio(w, s,   a, b) {
		a = (w SUBSEP s); b = (w SUBSEP REF)
		if (!(a in med) || !(b in med) || med[a] == "" || med[b] == "" || med[a] <= 0 || med[b] <= 0) return ""
		return unit[a] == "ops/s" ? med[b] / med[a] : med[a] / med[b]
	}
	function fmtr(r) { return r == "" ? "–" : r >= 10 ? sprintf("%.0f×", r) : sprintf("%.2f×", r) }
	function cell(w, s, k) {
		k = w SUBSEP s
		if (!(k in n)) return "–"
		if (fl[k] > 0) return "**FAIL**"
		return ""
	}
	FILENAME ~ /order/ {
		if ($1 != G) next
		if ($2 == "W") W[++nw] = $3; else S[++ns] = $3
		next
	}
	$1 == G { k = $2 SUBSEP $3; n[k] = $4; med[k] = $5; mn[k] = $6; mx[k] = $7; p90[k] = $8; unit[k] = $9; fl[k] = $10 }
	END {
		if (KIND == "union") {
			hdr = "| workload |"; sep = "| --- |"
			for (j = 1; j <= ns; j++) { hdr = hdr " " S[j] " |"; sep = sep " ---: |" }
			print "Ratio of medians to " REF " (time, or inverse rate; below 1 is faster):\n"
			print hdr; print sep
			line = "workload"; for (j = 1; j <= ns; j++) line = line " " S[j]; print line > DAT
			for (i = 1; i <= nw; i++) {
				w = W[i]; if (w ~ /^(rss|fds)_/) continue
				line = "| " w " |"; dl = w
				for (j = 1; j <= ns; j++) {
					c = cell(w, S[j]); r = ratio(w, S[j])
					line = line " " (c != "" ? c : fmtr(r)) " |"
					dl = dl " " (c == "" && r != "" ? r : "?")
					if (c == "" && r != "") { lg[j] += log(r); cnt[j]++ } else if (c != "") bad[j] = 1
				}
				print line; print dl > DAT
			}
			line = "| **geometric mean** |"; sl = ""
			for (j = 1; j <= ns; j++) {
				g = cnt[j] ? exp(lg[j] / cnt[j]) : ""
				line = line " **" fmtr(g) "**" (bad[j] ? " (fails)" : "") " |"
				if (S[j] != REF) sl = sl (sl ? ", " : "") S[j] " " fmtr(g) (bad[j] ? " (with FAILs)" : "")
			}
			print line
			print "\nMedians and spread (± half the min–max range, in % of the median):\n"
			print hdr; print sep
			for (i = 1; i <= nw; i++) {
				w = W[i]; if (w ~ /^(rss|fds)_/) continue
				line = "| " w " |"
				for (j = 1; j <= ns; j++) {
					k = w SUBSEP S[j]; c = cell(w, S[j])
					line = line " " (c != "" ? c : fmtv(med[k], unit[k]) spread(k)) " |"
				}
				print line
			}
			line = "| walk_fresh / walk_par2 (2-core scaling) |"
			for (j = 1; j <= ns; j++) {
				a = "walk_fresh" SUBSEP S[j]; b = "walk_par2" SUBSEP S[j]
				line = line " " ((a in med) && (b in med) && med[b] > 0 ? sprintf("%.2f×", med[a] / med[b]) : "–") " |"
			}
			print line
			hr = 0
			for (i = 1; i <= nw; i++) if (W[i] ~ /^(rss|fds)_/) hr = 1
			if (hr) {
				print "\nDaemon resources (median), after a full walk and after drop_caches:\n"
				print hdr; print sep
				for (i = 1; i <= nw; i++) {
					w = W[i]; if (w !~ /^(rss|fds)_/) continue
					line = "| " w " |"
					for (j = 1; j <= ns; j++) {
						k = w SUBSEP S[j]; c = cell(w, S[j])
						line = line " " (c != "" ? c : unit[k] == "KiB" ? sprintf("%.1f MiB", med[k] / 1024) : fmtv(med[k], unit[k])) " |"
					}
					print line
				}
			}
			printf "union (geomean ratio to %s): %s\n", REF, sl > SUM
		} else if (KIND == "procfs") {
			hdr = "| file × readers |"; sep = "| --- |"
			for (j = 1; j <= ns; j++) { hdr = hdr " " S[j] " |"; sep = sep " ---: |" }
			for (j = 1; j <= ns; j++) if (S[j] != REF) { hdr = hdr " " S[j] " slowdown vs " REF " |"; sep = sep " ---: |" }
			if (LX != "") { hdr = hdr " strata-procfs speedup vs lxcfs |"; sep = sep " ---: |" }
			if (FF != "") { hdr = hdr " strata-procfs share of fuse-floor |"; sep = sep " ---: |" }
			print "open+read+close per second (median, ± half the min–max range) and ratios of medians:\n"
			print hdr; print sep
			line = "file"; for (j = 1; j <= ns; j++) line = line " " S[j]; print line > DAT
			for (i = 1; i <= nw; i++) {
				w = W[i]; if (w == "memtotal" || w == "mount") continue
				line = "| " w " |"; dl = "\"" w "\""
				for (j = 1; j <= ns; j++) {
					k = w SUBSEP S[j]; c = cell(w, S[j])
					line = line " " (c != "" ? c : fmtv(med[k], unit[k]) spread(k)) " |"
					dl = dl " " (c == "" && (k in med) && med[k] != "" ? med[k] : "?")
				}
				for (j = 1; j <= ns; j++) if (S[j] != REF) {
					r = ratio(w, S[j]); line = line " " fmtr(r) " |"
					if (r != "") { lg[j] += log(r); cnt[j]++ }
				}
				a = w SUBSEP "strata-procfs"; b = w SUBSEP "lxcfs"
				if ((a in med) && (b in med) && med[b] > 0) { r = med[a] / med[b]; line = line " " fmtr(r) " |"; lgx += log(r); cx++ }
				b = w SUBSEP "fuse-floor"
				if (FF != "" && (a in med) && (b in med) && med[b] > 0) { r = med[a] / med[b]; line = line " " sprintf("%.0f%%", 100 * r) " |"; lgf += log(r); cf++ }
				print line; print dl > DAT
			}
			sl = ""
			for (j = 1; j <= ns; j++) if (S[j] != REF && cnt[j]) sl = sl (sl ? ", " : "") S[j] " " fmtr(exp(lg[j] / cnt[j]))
			if (cx) sl = sl "; strata-procfs/lxcfs speedup " fmtr(exp(lgx / cx))
			if (cf) sl = sl "; strata-procfs at " sprintf("%.0f%%", 100 * exp(lgf / cf)) " of the FUSE floor"
			printf "procfs (geomean slowdown vs %s): %s\n", REF, sl > SUM
		} else {
			print "Start to exit of `/bin/true` in busybox, milliseconds:\n"
			print "| system | median | p90 | min | max | runs | median vs " REF " |"
			print "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
			print "system median p90" > DAT
			sl = ""
			for (j = 1; j <= ns; j++) {
				k = "start" SUBSEP S[j]; c = cell("start", S[j])
				if (c != "") { print "| " S[j] " | " c " | | | | | |"; continue }
				r = ratio("start", S[j])
				printf "| %s | %.1f | %.1f | %.1f | %.1f | %d | %s |\n", S[j], med[k] * 1000, p90[k] * 1000, mn[k] * 1000, mx[k] * 1000, n[k], fmtr(r)
				printf "%s %.3f %.3f\n", S[j], med[k] * 1000, p90[k] * 1000 > DAT
				if (S[j] != REF) sl = sl (sl ? ", " : "") S[j] " " fmtr(r)
			}
			printf "runner (median start vs %s): %s\n", REF, sl > SUM
		}
	}' LX="$(grep -q $'^procfs\tS\tlxcfs' "$OUT/order.tsv" && echo 1)" \
		FF="$(grep -q $'^procfs\tS\tfuse-floor' "$OUT/order.tsv" && echo 1)" "$OUT/order.tsv" "$OUT/stats.tsv"
}

chart() {
	local g=$1 title=$2 ylabel=$3 log=$4 cols
	[[ -s $OUT/$g.dat ]] || return 0
	command -v gnuplot >/dev/null || { echo "report.sh: no gnuplot, no chart" >&2; return 0; }
	cols=$(awk 'NR == 1 { print NF }' "$OUT/$g.dat")
	gnuplot <<EOF 2>"$OUT/$g.gnuplot.log"
set terminal svg size 1100,520 dynamic noenhanced font "sans,11"
set output "$OUT/$g.svg"
set title "$title"
set ylabel "$ylabel"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top left
set xtics rotate by -35 nomirror
set datafile missing "?"
$([[ $log == 1 ]] && echo "set logscale y")
$([[ $g == union ]] && echo "set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2")
plot for [i=2:$cols] "$OUT/$g.dat" using i:xtic(1) title columnhead(i)
EOF
	[[ -s $OUT/$g.svg ]] || echo "report.sh: gnuplot failed for $g: $(head -c 300 "$OUT/$g.gnuplot.log")" >&2
}

: >"$OUT/summary.txt"
for g in "$@"; do
	case $g in
	union)
		table union overlayfs union >"$OUT/union.md"
		chart union "Union filesystems: time relative to kernel overlayfs (log scale, lower is faster)" "× overlayfs" 1
		;;
	procfs)
		table procfs host procfs >"$OUT/procfs.md"
		chart procfs "/proc virtualizers: open+read+close per second in a limited cgroup (log scale, higher is faster)" "reads/s" 1
		;;
	runner)
		table runner crun runner >"$OUT/runner.md"
		chart runner "busybox /bin/true, start to exit (lower is faster)" "ms (median, p90)" 0
		;;
	esac
	[[ -f $OUT/$g.summary ]] && cat "$OUT/$g.summary" >>"$OUT/summary.txt"
	rm -f "$OUT/$g.summary"
done

# report.md: everything in one file, as pasted into docs/bench.md.
{
	echo "# Benchmark results"
	echo
	echo '```'
	cat "$OUT/machine.txt" 2>/dev/null
	echo '```'
	echo
	echo "Summary:"
	echo
	sed 's/^/- /' "$OUT/summary.txt"
	for g in "$@"; do
		[[ -f $OUT/$g.md ]] || continue
		echo
		echo "## $g"
		echo
		[[ -f $OUT/$g-scale.txt ]] && { echo "Scale: $(tr '\n' ',' <"$OUT/$g-scale.txt" | sed 's/,$//; s/,/, /g')"; echo; }
		[[ -f $OUT/$g-options.txt ]] && { echo "Options:"; echo; sed 's/^/- /' "$OUT/$g-options.txt"; echo; }
		cat "$OUT/$g.md"
		echo
		echo "![$g]($g.svg)"
	done
	echo
	echo "Checks: $(grep -c '^ok' "$OUT/checks.log" 2>/dev/null) passed, $(grep -c '^FAIL' "$OUT/checks.log" 2>/dev/null) failed."
} >"$OUT/report.md"
exit 0
