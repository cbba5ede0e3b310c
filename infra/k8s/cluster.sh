#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for `make test-k8s` (run as root).
#
#   infra/k8s/cluster.sh up        build what is missing (infra/k8s/build.sh, the images of
#                                  infra/k8s/images.sh), then start etcd, the control plane,
#                                  containerd, the kubelet, kube-proxy, CoreDNS and the
#                                  NetworkPolicy enforcer (kube-router's firewall); wait
#                                  until the node and DNS are Ready
#   infra/k8s/cluster.sh down      stop all of it and undo what `up` changed on the host
#                                  (processes by pid, mounts, iptables rules and ipsets, the
#                                  bridge, sysctls), also after a failed or interrupted `up`
#   infra/k8s/cluster.sh status    exit 0 while the cluster answers
#   infra/k8s/cluster.sh env       print `export KUBECONFIG=…` for the admin's kubeconfig
#
# Versions and the pitfalls met on these machines: ../shared/notes/kubernetes-here.md. The pod
# network is a Linux bridge (cni0, 10.244.0.0/16, the host at 10.244.0.1, where the API server
# listens: it cannot advertise a loopback address); Services are 10.96.0.0/16, DNS 10.96.0.10.
# State lives in $K8S_STATE (default /var/lib/pinpipe-k8s), removed by `down`; the binaries and
# containerd's image store are kept in $K8S_CACHE (default ~/.cache/pinpipe/k8s), so a second
# `up` on the same machine builds and imports nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
K8S_STATE="${K8S_STATE:-/var/lib/pinpipe-k8s}"
K8S_CACHE="${K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pinpipe/k8s}"
NODE_NAME="${NODE_NAME:-pinpipe-node}"
BRIDGE=cni0
HOST_IP=10.244.0.1
POD_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
DNS_IP=10.96.0.10
ETCD_PORT="${ETCD_PORT:-22379}"
API_PORT=6443
WAIT_SECONDS="${K8S_WAIT_SECONDS:-120}"
bin="$(bash "$here/build.sh" --print)"
pki="$K8S_STATE/pki"
run="$K8S_STATE/run"
logs="$K8S_STATE/log"
containerd_sock="$run/containerd/containerd.sock"
admin_kubeconfig="$K8S_STATE/admin.kubeconfig"
# what `up` changes and `down` restores (saved in $K8S_STATE/sysctls)
SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes)
DEBIAN_PACKAGES=(etcd-server containerd runc containernetworking-plugins iptables conntrack socat
  ethtool iproute2 openssl ipset)

log() { echo "k8s/cluster.sh: $*" >&2; }
kubectl() { "$bin/kubectl" --kubeconfig "$admin_kubeconfig" "$@"; }

# -- prerequisites ---------------------------------------------------------------------------
require() {
  [ "$(id -u)" = 0 ] || { log "run as root (the cluster changes iptables, a bridge, sysctls)"; exit 1; }
  local missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Debian's etcd and containerd packages may start system instances: not ours, leave them
  bash "$here/build.sh"
}

# -- processes -------------------------------------------------------------------------------
# start NAME COMMAND…: run in the background, log to $logs/NAME.log, pid in $run/NAME.pid
start() {
  local name="$1"; shift
  mkdir -p "$logs" "$run"
  nohup "$@" >>"$logs/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
}

alive() { local f="$run/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# wait_for NAME WHAT CHECK…: until CHECK succeeds; fail naming NAME with its log's tail
wait_for() {
  local name="$1" what="$2"; shift 2
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@" >/dev/null 2>&1; do
    if ! alive "$name"; then
      log "$name exited before $what; the end of $logs/$name.log:"; tail -n 25 "$logs/$name.log" >&2
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "$name: not $what after ${WAIT_SECONDS}s; the end of $logs/$name.log:"
      tail -n 25 "$logs/$name.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  log "$name: $what"
}

stop_pid() {  # stop_pid NAME [SECONDS]: SIGTERM, then SIGKILL
  local f="$run/$1.pid" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((${2:-20} * 5))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# -- host network ----------------------------------------------------------------------------
save_sysctls() {
  [ -f "$K8S_STATE/sysctls" ] && return 0
  modprobe br_netfilter 2>/dev/null || true
  for s in "${SYSCTLS[@]}"; do
    printf '%s=%s\n' "$s" "$(sysctl -n "$s" 2>/dev/null || echo '')"
  done >"$K8S_STATE/sysctls"
}

restore_sysctls() {
  [ -f "$K8S_STATE/sysctls" ] || return 0
  while IFS='=' read -r key value; do
    [ -n "$value" ] && sysctl -qw "$key=$value" 2>/dev/null || true
  done <"$K8S_STATE/sysctls"
  rm -f "$K8S_STATE/sysctls"
}

bridge_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$HOST_IP/16" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
  mkdir -p "$K8S_STATE/cni"
  cat >"$K8S_STATE/cni/10-pinpipe.conflist" <<CONF
{
  "cniVersion": "0.4.0",
  "name": "pinpipe",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$HOST_IP",
       "rangeStart": "10.244.1.2"}]], "routes": [{"dst": "0.0.0.0/0"}],
       "dataDir": "$K8S_STATE/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CONF
}

# -- certificates ----------------------------------------------------------------------------
cert() {  # cert NAME CN [O] [SANS]: a key and a certificate signed by the cluster CA
  local name="$1" cn="$2" org="${3:-}" sans="${4:-}"
  [ -f "$pki/$name.crt" ] && return 0
  local subject="/CN=$cn"
  [ -n "$org" ] && subject="/O=$org/CN=$cn"
  openssl genrsa -out "$pki/$name.key" 2048 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
  local ext="$pki/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 365 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$ext"
}

certificates() {
  mkdir -p "$pki"
  if [ ! -f "$pki/ca.crt" ]; then
    openssl genrsa -out "$pki/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=pinpipe-k8s-ca" -days 365 \
      -out "$pki/ca.crt" 2>/dev/null
  fi
  cert apiserver kube-apiserver "" \
    "IP:$HOST_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin admin system:masters
  cert controller-manager system:kube-controller-manager
  cert scheduler system:kube-scheduler
  cert kube-proxy system:kube-proxy
  cert kube-router kube-router
  cert node "system:node:$NODE_NAME" system:nodes "IP:$HOST_IP,DNS:$NODE_NAME"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  if [ ! -f "$pki/sa.key" ]; then
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  fi
  for who in admin controller-manager scheduler kube-proxy kube-router node; do
    kubeconfig "$who" >"$K8S_STATE/$who.kubeconfig"
  done
}

kubeconfig() {  # kubeconfig NAME: a kubeconfig with NAME's certificate
  cat <<CONF
apiVersion: v1
kind: Config
clusters:
- name: pinpipe
  cluster:
    server: https://$HOST_IP:$API_PORT
    certificate-authority: $pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $pki/$1.crt
    client-key: $pki/$1.key
contexts:
- name: pinpipe
  context: {cluster: pinpipe, user: $1}
current-context: pinpipe
CONF
}

# -- the components --------------------------------------------------------------------------
start_etcd() {
  alive etcd && return 0
  start etcd etcd --name pinpipe --data-dir "$K8S_STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "pinpipe=http://127.0.0.1:$((ETCD_PORT + 1))"
  wait_for etcd "serving" curl -sf "http://127.0.0.1:$ETCD_PORT/health"
}

start_control_plane() {
  alive kube-apiserver || start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address="$HOST_IP" --advertise-address="$HOST_IP" --secure-port="$API_PORT" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true --enable-priority-and-fairness=false \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --profiling=false --v=1
  wait_for kube-apiserver "serving" kubectl get --raw /readyz
  alive kube-controller-manager || start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig="$K8S_STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$K8S_STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$K8S_STATE/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" \
    --allocate-node-cidrs=true --cluster-cidr="$POD_CIDR" --node-cidr-mask-size=16 \
    --profiling=false --v=1
  alive kube-scheduler || start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig="$K8S_STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig="$K8S_STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig="$K8S_STATE/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1
  wait_for kube-controller-manager "serving" curl -sfk https://127.0.0.1:10257/healthz
  wait_for kube-scheduler "serving" curl -sfk https://127.0.0.1:10259/healthz
}

start_containerd() {
  alive containerd && return 0
  mkdir -p "$K8S_STATE/containerd" "$run/containerd"
  cat >"$K8S_STATE/containerd/config.toml" <<CONF
version = 2
root = "$K8S_CACHE/containerd-root"
state = "$run/containerd/state"
[grpc]
  address = "$containerd_sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:pinpipe"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$K8S_STATE/cni"
CONF
  start containerd containerd --config "$K8S_STATE/containerd/config.toml"
  wait_for containerd "serving" ctr --address "$containerd_sock" version
}

load_images() {
  bash "$here/images.sh" load "$containerd_sock"
}

start_kubelet() {
  alive kubelet && return 0
  mkdir -p "$K8S_STATE/kubelet"
  cat >"$K8S_STATE/kubelet/config.yaml" <<CONF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$containerd_sock
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $pki/node.crt
tlsPrivateKeyFile: $pki/node.key
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
maxPods: 60
CONF
  start kubelet "$bin/kubelet" --config="$K8S_STATE/kubelet/config.yaml" \
    --kubeconfig="$K8S_STATE/node.kubeconfig" --root-dir="$K8S_STATE/kubelet/root" \
    --hostname-override="$NODE_NAME" --node-ip="$HOST_IP" --v=1
  wait_for kubelet "Ready" node_ready
}

node_ready() {
  [ "$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

start_kube_proxy() {
  alive kube-proxy && return 0
  mkdir -p "$K8S_STATE/kube-proxy"
  cat >"$K8S_STATE/kube-proxy/config.yaml" <<CONF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $K8S_STATE/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
iptables: {masqueradeAll: true}
conntrack: {maxPerCore: 0}
hostnameOverride: $NODE_NAME
CONF
  start kube-proxy "$bin/kube-proxy" --config="$K8S_STATE/kube-proxy/config.yaml" --v=1
  wait_for kube-proxy "serving" curl -sf http://127.0.0.1:10256/healthz
}

start_addons() {
  kubectl apply --server-side -f "$here/addons" >/dev/null
  wait_for kube-apiserver "deployment coredns available" \
    kubectl -n kube-system wait --for=condition=Available --timeout=2s deployment/coredns
  volumes
}

start_network_policies() {  # kube-router's NetworkPolicy controller, on the node (iptables, ipset)
  alive kube-router && return 0
  start kube-router "$bin/kube-router" --kubeconfig="$K8S_STATE/kube-router.kubeconfig" \
    --hostname-override="$NODE_NAME" --run-firewall=true --run-router=false \
    --run-service-proxy=false --health-port=20244 --metrics-port=0 \
    --iptables-sync-period=1m --v=1
  wait_for kube-router "enforcing NetworkPolicies" curl -sf http://127.0.0.1:20244/healthz
}

volumes() {  # hostPath PersistentVolumes for the claims of the test overlay
  local pvs="" i released
  # a volume whose claim is gone (a deleted namespace) is emptied and offered again
  released="$(kubectl get pv -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{"\n"}{end}')"
  for i in $released; do
    kubectl delete pv "$i" --wait=true >/dev/null
    rm -rf "${K8S_STATE:?}/volumes/${i#pinpipe-}"
  done
  for i in $(seq 1 8); do
    mkdir -p "$K8S_STATE/volumes/pv$i"
    chmod 0777 "$K8S_STATE/volumes/pv$i"
    pvs+="---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pinpipe-pv$i, labels: {pinpipe.dev/cluster: test}}
spec:
  capacity: {storage: 20Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local-hostpath
  hostPath: {path: $K8S_STATE/volumes/pv$i, type: Directory}
"
  done
  printf '%s' "$pvs" | kubectl apply --server-side -f - >/dev/null
}

up() {
  require
  local started=$SECONDS
  mkdir -p "$K8S_STATE" "$run" "$logs"
  save_sysctls
  bridge_up
  certificates
  start_etcd
  start_control_plane
  start_containerd
  load_images
  start_kubelet  # first: kube-proxy waits for its Node object before it reports healthy
  start_kube_proxy
  start_addons
  start_network_policies
  log "up in $((SECONDS - started))s: export KUBECONFIG=$admin_kubeconfig"
}

# -- down ------------------------------------------------------------------------------------
down() {
  [ -d "$K8S_STATE" ] || { log "nothing to stop"; return 0; }
  if alive containerd && [ -x "$bin/crictl" ]; then
    "$bin/crictl" --runtime-endpoint "unix://$containerd_sock" --timeout 60s rmp -fa >/dev/null 2>&1 || true
  fi
  for name in kube-router kubelet kube-proxy kube-scheduler kube-controller-manager kube-apiserver; do
    stop_pid "$name"
  done
  stop_pid containerd 30
  # whatever still runs in the pods' cgroups (shims, containers), by pid
  local pids
  pids="$(find /sys/fs/cgroup/*/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u || true)"
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  pkill -9 -f "containerd-shim-runc-v2 .*-address $containerd_sock" 2>/dev/null || true
  stop_pid etcd
  # the kubelet's cgroups, deepest first (empty now)
  find /sys/fs/cgroup/*/kubepods -depth -type d -exec rmdir {} \; 2>/dev/null || true
  # mounts under the state folder and containerd's root (pod volumes, snapshots, sandboxes'
  # shm), deepest first
  awk -v s="$K8S_STATE" -v c="$K8S_CACHE/containerd-root" '$2 ~ "^"s || $2 ~ "^"c {print $2}' \
    /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  for ns in /var/run/netns/cni-*; do
    [ -e "$ns" ] || continue
    umount "$ns" 2>/dev/null || true
    rm -f "$ns"
  done
  # kube-proxy's, kube-router's and CNI's iptables chains
  [ -x "$bin/kube-proxy" ] && "$bin/kube-proxy" --cleanup >/dev/null 2>&1 || true
  for table in filter nat mangle; do
    iptables-save -t "$table" 2>/dev/null | awk '/^:(KUBE-|CNI-)/ {print substr($1, 2)}' | while read -r chain; do
      iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    { iptables-save -t "$table" 2>/dev/null | grep -E '^-A .*(KUBE-|CNI-)' || true; } | sed 's/^-A/-D/' |
      while read -r rule; do
        eval "iptables -t $table $rule" 2>/dev/null || true
      done
    iptables-save -t "$table" 2>/dev/null | awk '/^:(KUBE-|CNI-)/ {print substr($1, 2)}' | while read -r chain; do
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
  # kube-router's ipsets (its chains are KUBE-…, removed above)
  { ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router-|inet6:KUBE-)' || true; } | while read -r set; do
    ipset destroy "$set" 2>/dev/null || true
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link set "$BRIDGE" down 2>/dev/null || true
    ip link delete "$BRIDGE" 2>/dev/null || true
  fi
  restore_sysctls
  rm -rf "$K8S_STATE"
  log "down: processes stopped, mounts, rules, the bridge and sysctls restored"
}

status() { kubectl get --raw /readyz >/dev/null 2>&1; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export KUBECONFIG=$admin_kubeconfig" ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
