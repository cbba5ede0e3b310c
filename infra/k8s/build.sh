#!/usr/bin/env bash
# Builds the programs of the test cluster from the Go module proxy, each once per version, into
# $K8S_CACHE (default ~/.cache/pinpipe/k8s), outside the clone:
#   Kubernetes  kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
#   CoreDNS     coredns
#   cri-tools   crictl
#   kube-router (its NetworkPolicy controller only: iptables and ipset; kube-network-policies
#               needs the nftables `queue` expression, which these machines' kernel lacks)
#   Prometheus  prometheus (Debian's is built without Kubernetes service discovery)
#
#   infra/k8s/build.sh            build what is missing (about 15 min of 2 cores the first time)
#   infra/k8s/build.sh --print    print the folder of the binaries
#
# Kubernetes cannot be `go install`ed (its go.mod points its staging modules at local paths), so
# a throwaway module requires k8s.io/kubernetes and replaces each staging module by its published
# twin (v0.<minor>.<patch>); the version variables are set so the binaries report their version.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.7}"
CRICTL_VERSION="${CRICTL_VERSION:-v1.34.0}"
KUBE_ROUTER_VERSION="${KUBE_ROUTER_VERSION:-v2.1.0}"
# v3.5.0, the version of k8s/components/monitoring (Prometheus's Go module says v0.<3 minor>)
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.305.0}"
K8S_CACHE="${K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pinpipe/k8s}"
bin="$K8S_CACHE/bin-$K8S_VERSION"
components=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
  kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller)

log() { echo "k8s/build.sh: $*" >&2; }

[ "${1:-}" = "--print" ] && { echo "$bin"; exit 0; }
command -v go >/dev/null || { log "go not found (apt-get install golang-go)"; exit 1; }
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
# one build at a time (a second caller waits, then finds the binaries built)
exec 9>"$K8S_CACHE/build.lock"
flock 9

build_kubernetes() {
  local missing=()
  for c in "${components[@]}"; do [ -x "$bin/$c" ] || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local src="$K8S_CACHE/src-$K8S_VERSION" minor="${K8S_VERSION#v1.}"
  mkdir -p "$src"
  {
    echo "module pinpipe.local/k8sbuild"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do echo "	k8s.io/$m => k8s.io/$m v0.$minor"; done
    echo ")"
  } >"$src/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for c in "${components[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
    echo ")"
  } >"$src/tools.go"
  log "resolving Kubernetes $K8S_VERSION from the Go module proxy (~600 MB of sources, once)"
  (cd "$src" && go mod tidy)
  local date ldflags=() v
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=("-X $v.gitVersion=$K8S_VERSION" "-X $v.gitMajor=1" "-X $v.gitMinor=${minor%%.*}"
      "-X $v.gitTreeState=clean" "-X $v.buildDate=$date")
  done
  for c in "${missing[@]}"; do
    log "building $c $K8S_VERSION"
    local started=$SECONDS
    (cd "$src" && go build -trimpath -ldflags "-s -w ${ldflags[*]}" -o "$bin/$c.tmp" "k8s.io/kubernetes/cmd/$c")
    mv "$bin/$c.tmp" "$bin/$c"
    log "built $c in $((SECONDS - started))s"
  done
}

go_install() {  # go_install NAME PACKAGE@VERSION
  [ -x "$bin/$1" ] && return 0
  log "building $1 (${2##*@})"
  local started=$SECONDS tmp
  tmp="$(mktemp -d)"
  GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "$2"
  mv "$tmp/$(basename "${2%@*}")" "$bin/$1"
  rm -rf "$tmp"
  log "built $1 in $((SECONDS - started))s"
}

build_prometheus() {
  # `go install` is refused (its go.mod has a replace directive): a throwaway module with the
  # same replace, as for Kubernetes
  [ -x "$bin/prometheus" ] && return 0
  local src="$K8S_CACHE/src-prometheus-$PROMETHEUS_VERSION" started=$SECONDS
  local release="3.${PROMETHEUS_VERSION#v0.}"  # v0.305.0 -> 3.305.0 -> 3.5.0 below
  release="3.$((10#$(echo "$release" | cut -d. -f2) - 300)).$(echo "$release" | cut -d. -f3)"
  mkdir -p "$src"
  cat >"$src/go.mod" <<MOD
module pinpipe.local/prometheusbuild

go 1.23.0

require github.com/prometheus/prometheus $PROMETHEUS_VERSION

replace github.com/fsnotify/fsnotify v1.8.0 => github.com/fsnotify/fsnotify v1.7.0
MOD
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/prometheus/prometheus/cmd/prometheus"\n' >"$src/tools.go"
  log "building prometheus $release"
  (cd "$src" && go mod tidy && go build -trimpath \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release" \
    -o "$bin/prometheus.tmp" github.com/prometheus/prometheus/cmd/prometheus)
  mv "$bin/prometheus.tmp" "$bin/prometheus"
  log "built prometheus in $((SECONDS - started))s"
}

build_kubernetes
go_install coredns "github.com/coredns/coredns@$COREDNS_VERSION"
go_install crictl "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
go_install kube-router "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
build_prometheus
log "binaries in $bin"
