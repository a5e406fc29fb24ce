# The multi-group part of test_raft_sync.sh (sourced by it, with count, run, leader and
# shards set): writes the keys routed by slot, then reads each back from every replica of the
# group that owns its slot (READONLY: the node's own copy). Returns 1 on any mismatch.

keys=()
for i in $(seq 1 "$count"); do keys+=("raft_sync:${run}:$i"); done

written="$(for k in "${keys[@]}"; do echo "SET $k value_$k"; done | cli "$leader" -c 2>&1 | grep -v '^-> Redirected')"
ok_count="$(printf '%s\n' "$written" | grep -c '^OK$' || true)"
if [ "$ok_count" != "$count" ]; then
    echo "FAIL: only $ok_count of $count writes acknowledged (routed by slot):" >&2
    printf '%s\n' "$written" | grep -v '^OK$' | head -n 5 >&2
    return 1
fi
slots=()
mapfile -t slots < <(for k in "${keys[@]}"; do echo "CLUSTER KEYSLOT $k"; done | cli "$leader")
echo "$(printf '%s\n' "$shards" | wc -l) shards; $count keys written through their groups' leaders"

# Prints "<port> <key>" for every replica port of every key's shard.
replica_reads() {
    local i slot first last ports p
    for i in "${!keys[@]}"; do
        slot="${slots[$i]}"
        while read -r first last ports; do
            [ "$slot" -ge "$first" ] && [ "$slot" -le "$last" ] || continue
            for p in $ports; do echo "$p ${keys[$i]}"; done
        done <<<"$shards"
    done
}
reads_by_port="$(replica_reads | sort -k1,1n -s)"

failed=0
checked=0
for port in $(printf '%s\n' "$reads_by_port" | cut -d' ' -f1 | uniq); do
    port_keys=()
    mapfile -t port_keys < <(printf '%s\n' "$reads_by_port" | awk -v p="$port" '$1 == p { print $2 }')
    if ! redis-cli -h "$HOST" -p "$port" PING >/dev/null 2>&1; then
        echo "port $port: not answering, skipped (${#port_keys[@]} keys)"
        continue
    fi
    expected="$(for k in "${port_keys[@]}"; do echo "value_$k"; done)"
    deadline=$((SECONDS + 15))
    while :; do
        got="$( (echo READONLY; for k in "${port_keys[@]}"; do echo "GET $k"; done) \
            | redis-cli -h "$HOST" -p "$port" 2>&1 | tail -n +2)"
        [ "$got" = "$expected" ] && break
        [ $SECONDS -ge $deadline ] && break
        sleep 0.2
    done
    checked=$((checked + ${#port_keys[@]}))
    if [ "$got" = "$expected" ]; then
        echo "port $port: all ${#port_keys[@]} keys of its groups match"
    else
        report_mismatch "port $port" "$expected" "$got" "${#port_keys[@]}"
        failed=1
    fi
done
if [ "$failed" = 1 ]; then
    echo "FAIL: replicas of a group differ" >&2
    return 1
fi
echo "PASS: $count keys, $checked replica reads, each from every replica of its group"
return 0
