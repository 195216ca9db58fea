#!/bin/sh
# The README tour's kernel (tests/test_readme.py): answers the bench from the action it is
# given, as echo_outcome.py does (verified when the minutes bin is 60 or more; cost 0.1 a
# candidate), in sh so that a bench of thousands of candidates starts no interpreter.
action=$(grep -o '"action":{[^}]*}' | tail -n 1)
minutes=$(printf '%s' "$action" | sed 's/.*"max_minutes_bin":\([^,}]*\).*/\1/')
candidates=$(printf '%s' "$action" | sed 's/.*"max_candidates_bin":\([^,}]*\).*/\1/')
case "$candidates" in *NA*) n=1 ;; *) n=$candidates ;; esac
verified=false
case "$minutes" in *NA*) ;; *) [ "$minutes" -ge 60 ] && verified=true ;; esac
if [ "$verified" = true ]; then status=success; codes='[]'; else status=failed; codes='["tests_failed"]'; fi
printf '{"verified":%s,"status":"%s","duration_ms":60000,"cost_usd":0.%s,"fail_codes":%s,"candidate_minutes":%s}\n' \
    "$verified" "$status" "$n" "$codes" "$n"
