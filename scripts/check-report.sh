#!/bin/bash
# check-report.sh [DIR] - is the report in DIR (default report/out) complete?
#   index.html, index.md and results.json exist and are not empty; results.json is valid JSON
#   (jq); every file index.html or index.md links (img src, a href, ![](...)) exists in DIR and
#   is not empty, and every linked PNG is a PNG. Prints what is wrong; exit 1 if anything is.
# CI runs it after `make report-quick` (.ci/run).
set -u
dir=${1:-report/out}
fail=0
problem() { echo "check-report: $*" >&2; fail=1; }

for f in index.html index.md results.json; do
  [ -s "$dir/$f" ] || problem "$dir/$f is missing or empty"
done
if [ -s "$dir/results.json" ]; then
  if command -v jq >/dev/null; then
    jq -e 'has("host")' "$dir/results.json" >/dev/null 2>&1 ||
      problem "$dir/results.json is not valid JSON with a \"host\" object"
    # the break-even sweep, when the report has one: every point has the documented fields
    jq -e '(.breakeven_sweep // []) | all(has("class") and has("footprint_insns") and
           has("B_ns") and has("h_ns") and has("p_ns") and has("predicted_m") and
           has("observed_m") and has("observed_m_min") and has("observed_m_max"))' \
       "$dir/results.json" >/dev/null 2>&1 ||
      problem "$dir/results.json: a breakeven_sweep point lacks a documented field"
  else
    problem "jq is not installed (apt-get install jq): cannot check $dir/results.json"
  fi
fi

# local links of both documents
links=$( { [ -f "$dir/index.html" ] && grep -oE "(src|href)=['\"][^'\"]+['\"]" "$dir/index.html" |
             sed -E "s/^(src|href)=['\"]//; s/['\"]$//"
           [ -f "$dir/index.md" ] && grep -oE '!\[[^]]*\]\([^)]+\)' "$dir/index.md" |
             sed -E 's/^.*\(//; s/\)$//'; } | grep -vE '^(https?:|mailto:|#)' | sort -u)
count=0
for l in $links; do
  count=$((count + 1))
  if [ ! -s "$dir/$l" ]; then
    problem "$dir/$l is linked but missing or empty"
  elif [[ "$l" == *.png ]] && [ "$(head -c 4 "$dir/$l" | od -An -tx1 | tr -d ' ')" != 89504e47 ]; then
    problem "$dir/$l is not a PNG"
  fi
done
if [ $fail = 0 ]; then
  echo "check-report: $dir complete (index.html, index.md, results.json, $count linked files)"
fi
exit $fail
