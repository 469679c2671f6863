#!/usr/bin/env bash
# matrix.sh DB ROUNDS "label|file|keep-index|extra args" ... : interleaved wall-time runs of sqlexp.py;
# keep-index: the one candidate index left visible (the others of $CANDIDATES are hidden in the transaction).
db=$1; rounds=$2; shift 2
U="postgresql://postgres@/$db?host=${PGHOST:-/tmp/benchpg/data}"
for r in $(seq "$rounds"); do
  for spec in "$@"; do
    IFS='|' read -r label file keep extra <<<"$spec"
    hide=$(echo "$CANDIDATES" | tr ',' '\n' | grep -vxF -e none $(printf -- " -e %s" ${keep//+/ }) | paste -sd,)
    out=$(python "$(dirname "$0")/sqlexp.py" "$U" "$file" --hide "$hide" --wall prepared --reps "${REPS:-30}" $extra)
    echo "$label $(echo "$out" | grep -o '"wall_ms_p50": [0-9.]*' | cut -d' ' -f2)"
  done
done | awk '{v[$1]=v[$1] " " $2; if (!($1 in m) || $2 < m[$1]) m[$1]=$2} END {for (k in v) print k, "min=" m[k], "runs:" v[k]}' | sort
