# Random values for scripts/gen-env.sh and kubernetes/secrets.sh, from
# /dev/urandom. Source it; it defines functions only.

# random_hex N: N random bytes as 2N hex digits.
random_hex() {
	od -An -v -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# random_uuid: a random UUID (version 4), the form Consul requires of a
# token's secret.
random_uuid() {
	local h
	h=$(random_hex 16)
	printf '%s-%s-4%s-%x%s-%s' "${h:0:8}" "${h:8:4}" "${h:13:3}" $((0x${h:16:1} & 3 | 8)) "${h:17:3}" "${h:20:12}"
}
