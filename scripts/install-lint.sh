#!/usr/bin/env bash
# Installs golangci-lint, pinned, into .tools/bin (gitignored) from the Go
# module proxy, only when that exact version is not already there, so the
# second run is instant. Its configuration is .golangci.yml.
#
#   scripts/install-lint.sh        (from anywhere; it prints the binary path)
#   "$(scripts/install-lint.sh)" run ./...
#
# Quiet on success; when the build fails it shows the Go tool's output.
set -euo pipefail

GOLANGCI_LINT_VERSION=v2.15.0

REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN="$REPO/.tools/bin/golangci-lint"
GO=${GO:-go}

# `golangci-lint version` prints "golangci-lint has version 2.15.0 built with ...".
if ! "$BIN" version 2>/dev/null | grep -Eq "has version v?${GOLANGCI_LINT_VERSION#v} "; then
	# pkg@version builds outside any module; GOWORK=off keeps a go.work out too.
	if ! out=$(GOBIN="$REPO/.tools/bin" GOWORK=off "$GO" install \
		"github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION" 2>&1); then
		printf '%s\n' "$out" >&2
		echo "install-lint: cannot install golangci-lint $GOLANGCI_LINT_VERSION" >&2
		exit 1
	fi
fi
echo "$BIN"
