#!/usr/bin/env bash
# kube-apiserver + etcd for tests (workspace connector `kubernetes`): an envtest-style control plane on
# 127.0.0.1 with no controller-manager, scheduler or kubelet. Both binaries are built with `go build` from the
# Go module proxy (k8s.io/kubernetes plus etcd at the version Kubernetes requires) into the cache outside the
# clone, once per version. The project's own Kubeflow CRDs (kube/crds/*.yaml) are installed on every start.
# Clients authenticate with a bearer token (system:masters) and trust our own CA; .services/kube/kubeconfig
# has both. Usage: kube.sh start|stop|status|env|build
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Kubernetes 1.35: the newest 1.35 patch the Go module proxy served when this was written; the staging
# modules (k8s.io/api, ...) are v0.35.<patch>. STEWARD_KUBE_VERSION builds another one next to it.
VERSION="${STEWARD_KUBE_VERSION:-1.35.8}"
PORT="${STEWARD_KUBE_PORT:-56443}"
ETCD_PORT="${STEWARD_ETCD_PORT:-52379}"
ETCD_PEER_PORT="${STEWARD_ETCD_PEER_PORT:-52380}"
TIMEOUT="${STEWARD_KUBE_TIMEOUT:-120}"
DIR="$SERVICES_DIR/kube"
PKI="$DIR/pki"
ETCD_DATA="$DIR/etcd"
ETCD_PIDFILE="$DIR/etcd.pid"
ETCD_LOG="$DIR/etcd.log"
API_PIDFILE="$DIR/kube-apiserver.pid"
API_LOG="$DIR/kube-apiserver.log"
BUILDLOG="$DIR/build.log"
TOKENS="$DIR/tokens.csv"
KUBECONFIG_FILE="$DIR/kubeconfig"
SERVER="https://127.0.0.1:$PORT"
ETCD_URL="http://127.0.0.1:$ETCD_PORT"
SRC="$_LIB_DIR/kube"
# Bump when the build recipe below changes, so caches built the old way are not reused.
RECIPE=1

[[ "$VERSION" =~ ^1\.([0-9]+)\.([0-9]+)$ ]] || die "STEWARD_KUBE_VERSION=$VERSION is not of the form 1.MINOR.PATCH"
MINOR="${BASH_REMATCH[1]}"
STAGING_VERSION="0.$MINOR.${BASH_REMATCH[2]}"

# Go's module and build caches live next to the builds (not in ~/go), shared by every version and clone.
export GOMODCACHE="${STEWARD_GOMODCACHE:-$CACHE_DIR/go/mod}"
export GOCACHE="${STEWARD_GOCACHE:-$CACHE_DIR/go/build}"
export GOTOOLCHAIN=local GOFLAGS="-modcacherw -buildvcs=false" CGO_ENABLED=0

# build_key : what the cached build depends on besides the version (our etcd main and this recipe).
build_key() { { echo "recipe $RECIPE"; cat "$SRC/etcd/main.go"; } | sha256sum | cut -c1-12; }
BUILD="$CACHE_DIR/kube-$VERSION/$(build_key)"

need_go() {
  command -v go >/dev/null 2>&1 || die "no 'go' on PATH: install Go >= 1.25 to build kube-apiserver"
  local v; v="$(go env GOVERSION)"; v="${v#go}"
  [[ "$(printf '%s\n' 1.25 "$v" | sort -V | head -n1)" == 1.25 ]] \
    || die "go $v is too old: Kubernetes $VERSION needs Go >= 1.25 (GOTOOLCHAIN=local: no toolchain download)"
}

# build_in DIR : the recipe (SERVICES.md §3.1/3.2); runs in a subshell with output to the build log.
build_in() {
  local out="$1" gomod edits=() m line etcd_version ldflags
  mkdir -p "$out/src/etcd" "$out/bin"
  cp "$SRC/etcd/main.go" "$out/src/etcd/main.go"
  cd "$out/src"
  go mod init steward.local/services/kube
  # k8s.io/kubernetes requires its staging modules at v0.0.0 (its own go.mod replaces them with ./staging,
  # which a dependent cannot see): replace each with its published v0.<minor>.<patch>, read from that go.mod.
  gomod="$(go mod download -json "k8s.io/kubernetes@v$VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [[ -f "$gomod" ]] || { echo "go mod download k8s.io/kubernetes@v$VERSION gave no go.mod" >&2; return 1; }
  for m in $(awk '$2 == "v0.0.0" { print $1 }' "$gomod"); do edits+=("-replace=$m=$m@v$STAGING_VERSION"); done
  ((${#edits[@]} > 20)) || { echo "only ${#edits[@]} staging modules found in $gomod" >&2; return 1; }
  # Same language version and GODEBUG defaults as Kubernetes' own builds.
  edits+=("-go=$(awk '$1 == "go" { print $2; exit }' "$gomod")")
  while read -r line; do edits+=("-godebug=$line"); done < <(awk '$1 == "godebug" && NF == 2 { print $2 }' "$gomod")
  go mod edit "${edits[@]}"
  go get "k8s.io/kubernetes/cmd/kube-apiserver@v$VERSION"
  # etcd: exactly the server version Kubernetes' module graph selected.
  etcd_version="$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
  go get "go.etcd.io/etcd/server/v3/etcdmain@$etcd_version"
  ldflags="-s -w"
  for m in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $m.gitVersion=v$VERSION -X $m.gitMajor=1 -X $m.gitMinor=$MINOR -X $m.gitTreeState=clean"
  done
  nice -n 10 go build -trimpath -ldflags "$ldflags" -o ../bin/kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
  nice -n 10 go build -trimpath -ldflags "-s -w" -o ../bin/etcd ./etcd
  printf 'kubernetes v%s\netcd %s\n%s\n' "$VERSION" "$etcd_version" "$(go version)" >../VERSIONS
}

# build : kube-apiserver and etcd in $BUILD (bin/ plus src/go.mod, go.sum and VERSIONS), once per version.
# The first build downloads ~0.5 GB of modules and compiles for about 6 min on 2 cores (measured; allow 20);
# with Go's caches warm (a changed etcd main.go, a removed build directory) it takes about 10 s.
build() {
  [[ -x "$BUILD/bin/kube-apiserver" && -x "$BUILD/bin/etcd" ]] && return 0
  need_go
  local parent tmp t0
  parent="$(dirname "$BUILD")"
  mkdir -p "$parent" "$DIR"
  log "building kube-apiserver v$VERSION and etcd into $BUILD (the first build takes 6-20 min; log: $BUILDLOG)"
  t0=$SECONDS
  tmp="$(mktemp -d "$parent/.build-$(basename "$BUILD").XXXXXX")"
  if ! (set -euo pipefail; build_in "$tmp") >"$BUILDLOG" 2>&1; then
    rm -rf "$tmp"
    tail -n 30 "$BUILDLOG" >&2
    die "building kube-apiserver/etcd failed; see $BUILDLOG"
  fi
  # Atomic publish; if another start got there first, keep theirs.
  mv -T "$tmp" "$BUILD" 2>/dev/null || rm -rf "$tmp"
  log "built in $((SECONDS - t0)) s: $(tr '\n' ' ' <"$BUILD/VERSIONS")"
}

# ours PIDFILE WHAT : the pid in PIDFILE is our WHAT (etcd or kube-apiserver) for this data dir, not a reused pid.
ours() {
  pid_alive "$1" || return 1
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$(head -n1 "$1" | tr -dc '0-9')/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *"/bin/$2 "* && "$cmd" == *"$DIR/"* ]]
}
etcd_running() { ours "$ETCD_PIDFILE" etcd; }
api_running() { ours "$API_PIDFILE" kube-apiserver; }

token() { cut -d, -f1 "$TOKENS"; }
api() { curl -fsS --max-time 5 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(token)" "$@"; }
etcd_healthy() { curl -fsS --max-time 2 "$ETCD_URL/health" 2>/dev/null | grep -q '"health":"true"'; }
api_ready() { [[ "$(api "$SERVER/readyz" 2>/dev/null)" == ok ]]; }

# pki : our own CA, the serving cert (SAN IP:127.0.0.1), service-account keys and the admin token; made once
# per data dir, so a kubeconfig stays valid across restarts. Python's ssl wants key identifiers and key usage.
pki() {
  mkdir -p "$PKI"
  chmod 700 "$DIR" "$PKI"
  [[ -f "$PKI/ca.crt" && -f "$PKI/apiserver.crt" && -f "$PKI/sa.pub" && -f "$TOKENS" ]] && return 0
  log "creating a CA, serving certificate, service-account keys and admin token in $PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout ca.key -out ca.crt \
      -subj "/CN=steward-test-kube-ca" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" -addext "subjectKeyIdentifier=hash"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1" \
      >apiserver.ext
    openssl x509 -req -sha256 -days 3650 -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -extfile apiserver.ext -out apiserver.crt
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
    rm -f apiserver.csr apiserver.ext ca.srl
  ) >"$DIR/pki.log" 2>&1 || { cat "$DIR/pki.log" >&2; die "openssl failed making the test PKI"; }
  umask 077
  echo "$(openssl rand -hex 24),admin,admin,\"system:masters\"" >"$TOKENS"
}

kubeconfig() {
  local ca
  ca="$(base64 -w0 <"$PKI/ca.crt")"
  (umask 077; cat >"$KUBECONFIG_FILE.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: steward-test
  cluster:
    server: $SERVER
    certificate-authority-data: $ca
users:
- name: admin
  user:
    token: $(token)
contexts:
- name: steward-test
  context:
    cluster: steward-test
    user: admin
current-context: steward-test
EOF
  )
  mv "$KUBECONFIG_FILE.tmp" "$KUBECONFIG_FILE"
}

# wait_up PID WHAT CHECK LOG : until CHECK succeeds; fail at once with LOG's tail if PID exits.
wait_up() {
  local pid="$1" what="$2" check="$3" logfile="$4" deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! proc_alive "$pid"; then tail -n 30 "$logfile" >&2; die "$what exited during startup; see $logfile"; fi
    if $check; then return 0; fi
    sleep 0.2
  done
  tail -n 30 "$logfile" >&2
  die "$what did not become ready within ${TIMEOUT}s (STEWARD_KUBE_TIMEOUT); see $logfile"
}

start_etcd() {
  if etcd_running; then return 0; fi
  local p
  for p in "$ETCD_PORT" "$ETCD_PEER_PORT"; do
    port_open 127.0.0.1 "$p" && die "port 127.0.0.1:$p is taken by another process $(port_owner "$p");" \
      "set STEWARD_ETCD_PORT/STEWARD_ETCD_PEER_PORT or stop it"
  done
  mkdir -p "$ETCD_DATA"
  chmod 700 "$ETCD_DATA"
  echo "=== $(date -Is) start: etcd $ETCD_URL" >>"$ETCD_LOG"
  # exec keeps the pid; setsid detaches from the caller's terminal and process group.
  (exec setsid "$BUILD/bin/etcd" --name steward --data-dir "$ETCD_DATA" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "steward=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn \
    >>"$ETCD_LOG" 2>&1 </dev/null) &
  echo "$!" >"$ETCD_PIDFILE"
  wait_up "$!" etcd etcd_healthy "$ETCD_LOG"
}

start_apiserver() {
  if api_running; then return 0; fi
  port_open 127.0.0.1 "$PORT" && die "port 127.0.0.1:$PORT is taken by another process $(port_owner "$PORT");" \
    "set STEWARD_KUBE_PORT or stop it"
  echo "=== $(date -Is) start: kube-apiserver v$VERSION $SERVER" >>"$API_LOG"
  # ServiceAccount admission is off (no token controller runs); the endpoint reconciler is off because the
  # only address is loopback, which Endpoints reject. Flags otherwise follow envtest's.
  (exec setsid "$BUILD/bin/kube-apiserver" --etcd-servers="$ETCD_URL" --cert-dir="$PKI" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --secure-port="$PORT" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true --endpoint-reconciler-type=none \
    --disable-admission-plugins=ServiceAccount --authorization-mode=RBAC --token-auth-file="$TOKENS" \
    --service-account-issuer="$SERVER/" --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" --profiling=false \
    >>"$API_LOG" 2>&1 </dev/null) &
  echo "$!" >"$API_PIDFILE"
  wait_up "$!" kube-apiserver api_ready "$API_LOG"
}

crds_established() {
  local f
  for f in "$SRC"/crds/*.yaml; do
    api "$SERVER/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$(basename "$f" .yaml)" 2>/dev/null \
      | tr -d ' \n' | grep -q '"type":"Established","status":"True"' || return 1
  done
}

# install_crds : server-side apply of each kube/crds/<crd name>.yaml (idempotent), then wait until established.
install_crds() {
  local f
  for f in "$SRC"/crds/*.yaml; do
    api -X PATCH -H "Content-Type: application/apply-patch+yaml" --data-binary "@$f" -o /dev/null \
      "$SERVER/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$(basename "$f" .yaml)?fieldManager=steward-services&force=true" \
      || die "installing the CRD $f failed (is it valid? see the message above)"
  done
  wait_for crds_established 30 "the CRDs in $SRC/crds" "$API_LOG"
}

rss() { awk '/VmRSS/ { printf "%d MB", $2 / 1024 }' "/proc/$(head -n1 "$1" | tr -dc '0-9')/status" 2>/dev/null; }

start() {
  command -v openssl >/dev/null && command -v curl >/dev/null || apt_install openssl curl ca-certificates
  local t0
  t0="$(date +%s.%N)"
  if etcd_running && api_running; then
    api_ready || wait_up "$(head -n1 "$API_PIDFILE" | tr -dc '0-9')" kube-apiserver api_ready "$API_LOG"
    kubeconfig
    install_crds
    log "kube-apiserver already running at $SERVER"
    return 0
  fi
  build
  mkdir -p "$DIR"
  pki
  log "starting etcd on 127.0.0.1:$ETCD_PORT and kube-apiserver v$VERSION on $SERVER"
  start_etcd
  start_apiserver
  kubeconfig
  install_crds
  log "kube-apiserver ready: $SERVER, kubeconfig $KUBECONFIG_FILE" \
    "($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s; RSS apiserver $(rss "$API_PIDFILE")," \
    "etcd $(rss "$ETCD_PIDFILE"))"
}

stop() {
  if api_running || etcd_running; then log "stopping kube-apiserver and etcd"; else log "kube-apiserver not running"; fi
  # The API server first: it flushes nothing, but would log etcd connection errors for a while otherwise.
  if api_running; then stop_pid "$API_PIDFILE" 30; else rm -f "$API_PIDFILE"; fi
  if etcd_running; then stop_pid "$ETCD_PIDFILE" 30; else rm -f "$ETCD_PIDFILE"; fi
}

status() {
  if api_running && etcd_running; then
    echo "kube-apiserver running at $SERVER (etcd $ETCD_URL)"
  elif api_running || etcd_running; then
    echo "kube-apiserver $(api_running && echo running || echo stopped), etcd $(etcd_running && echo running || echo stopped)"
    return 1
  else
    echo "kube-apiserver stopped"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "STEWARD_KUBECONFIG=$KUBECONFIG_FILE" ;;
  build) build ;;
  *) echo "usage: $0 start|stop|status|env|build" >&2; exit 2 ;;
esac
