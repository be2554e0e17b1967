#!/usr/bin/env bash
# Build Open Policy Agent (the decision-engine peer of bench/peers/opa.py) from the Go module proxy.
#
# The toolchain's module cache, build cache and binary live under ${STEWARD_GO_CACHE:-~/.cache/steward/go},
# outside the clone, so a second run is instant. Prints the binary's path on its last line.
# Usage: scripts/opa.sh            (OPA_VERSION=v1.22.4 by default: the latest v1.22 patch the proxy serves)
set -euo pipefail

OPA_VERSION="${OPA_VERSION:-v1.22.4}"
CACHE="${STEWARD_GO_CACHE:-${HOME}/.cache/steward/go}"
BIN="${CACHE}/bin/opa-${OPA_VERSION}"

if [[ -x "${BIN}" ]]; then
    echo "${BIN}"
    exit 0
fi
command -v go >/dev/null || { echo "scripts/opa.sh: Go is needed (go.dev/dl or the distribution's golang package)" >&2; exit 1; }
mkdir -p "${CACHE}/bin"
export GOPATH="${CACHE}/gopath" GOMODCACHE="${CACHE}/mod" GOCACHE="${CACHE}/build" GOBIN="${CACHE}/bin/${OPA_VERSION}"
export GOFLAGS="-buildvcs=false" CGO_ENABLED=0
echo "[opa] go install github.com/open-policy-agent/opa@${OPA_VERSION} (first build takes minutes)" >&2
go install "github.com/open-policy-agent/opa@${OPA_VERSION}"
mv "${GOBIN}/opa" "${BIN}"
rmdir "${GOBIN}" 2>/dev/null || true
"${BIN}" version >&2
echo "${BIN}"
