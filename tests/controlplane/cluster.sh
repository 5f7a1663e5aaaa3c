#!/usr/bin/env bash
# The local Kubernetes control plane the tests run against: real etcd,
# kube-apiserver, kube-controller-manager and kube-scheduler, built from Go
# modules, with kwok playing the nodes. Everything binds to 127.0.0.1.
#
#   cluster.sh build    build missing binaries into the cache (first time: ~10 min)
#   cluster.sh up       build if needed, start the cluster, print its kubeconfig path
#   cluster.sh down     stop and remove the cluster
#   cluster.sh status   say what is built and whether the cluster answers
#   cluster.sh bin-dir  print the directory holding the built binaries
#   cluster.sh kubeconfig  print the kubeconfig path
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
k8s_version=v1.34.4
name=${JOBWARDEN_CLUSTER_NAME:-jobwarden}
cache_root=${JOBWARDEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jobwarden}
# The cache key changes whenever a wrapper module (and so a version) changes.
key=$(cat "$here"/*/go.mod "$here"/*/go.sum | sha256sum | cut -c1-12)
bin=$cache_root/controlplane-$k8s_version-$key/bin
state=$cache_root/cluster-$name
kubeconfig=$state/kubeconfig
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl helm)

say() { printf '[cluster] %s\n' "$*" >&2; }

# lock FILE SECONDS WHAT: hold an exclusive lock on FILE until this script
# exits, waiting at most SECONDS for whoever holds it. Released by the kernel
# when the holder exits, however it exits, so a killed run never leaves it held.
lock_fds=()
lock() {
  local fd
  exec {fd}>"$1"
  lock_fds+=("$fd")
  if ! flock -w "$2" "$fd"; then
    say "gave up after $2s waiting for $3 (lock $1, held by another cluster.sh)"
    exit 1
  fi
}

# Run a command that leaves daemons behind without passing them the lock
# descriptors: a daemon holding one would keep the lock held for its lifetime.
without_locks() {
  (
    for fd in "${lock_fds[@]}"; do eval "exec $fd>&-"; done
    exec "$@"
  )
}

export GOFLAGS=${GOFLAGS:--buildvcs=false}
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

build_kubernetes() {
  # The version stamped into the binaries must be the one they are built from.
  if ! grep -q "k8s.io/kubernetes $k8s_version\b" "$here/kubernetes/go.mod"; then
    say "k8s_version=$k8s_version in $0 does not match k8s.io/kubernetes in $here/kubernetes/go.mod"
    exit 1
  fi
  local pkg=k8s.io/component-base/version minor=${k8s_version#v1.}
  minor=${minor%%.*}
  local ldflags="-s -w -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
  (cd "$here/kubernetes" && go build -trimpath -ldflags "$ldflags" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
}

build_etcd() {
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)
}

build_kwok() {
  local v
  v=$(cd "$here/kwok" && go list -m -f '{{.Version}}' sigs.k8s.io/kwok)
  (cd "$here/kwok" && go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$v" \
    -o "$bin/" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl)
}

build_helm() {
  local v
  v=$(cd "$here/helm" && go list -m -f '{{.Version}}' helm.sh/helm/v3)
  (cd "$here/helm" && go build -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v" -o "$bin/helm" helm.sh/helm/v3/cmd/helm)
}

built() { [ -x "$bin/$1" ]; }

all_built() {
  local b
  for b in "${binaries[@]}"; do built "$b" || return 1; done
}

cmd_build() {
  mkdir -p "$bin"
  # Two builds into one bin dir would race on the same output files.
  lock "$bin/../build.lock" 1800 "another build of $bin"
  if ! all_built && ! command -v go >/dev/null; then
    say "the go command is needed to build the control plane"
    exit 1
  fi
  local start=$SECONDS
  if ! built kube-apiserver || ! built kube-controller-manager || ! built kube-scheduler || ! built kubectl; then
    say "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $k8s_version (first time: several minutes)..."
    build_kubernetes
  fi
  if ! built etcd; then say "building etcd..."; build_etcd; fi
  if ! built kwok || ! built kwokctl; then say "building kwok and kwokctl..."; build_kwok; fi
  if ! built helm; then say "building helm..."; build_helm; fi
  say "binaries ready in $bin ($((SECONDS - start))s)"
}

api_ready() {
  [ -f "$kubeconfig" ] && "$bin/kubectl" --kubeconfig "$kubeconfig" --request-timeout=5s \
    get --raw /readyz >/dev/null 2>&1
}

write_config() {
  mkdir -p "$state"
  {
    cat <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  kubeVersion: $k8s_version
  bindAddress: 127.0.0.1
  kubeAuthorization: true
  kubeAuditPolicy: $here/audit-policy.yaml
  disableQPSLimits: true
  etcdBinary: $bin/etcd
  kubeApiserverBinary: $bin/kube-apiserver
  kubeControllerManagerBinary: $bin/kube-controller-manager
  kubeSchedulerBinary: $bin/kube-scheduler
  kwokControllerBinary: $bin/kwok
  kubectlBinary: $bin/kubectl
---
EOF
    cat "$here/stages.yaml"
  } >"$state/kwokctl.yaml"
}

# Why a start failed, from the components' own logs.
explain_failure() {
  local logs
  logs="${KWOK_WORKDIR:-$HOME/.kwok}/clusters/$name/logs"
  say "$1; kwokctl said (last lines of $state/create.log):"
  tail -n 5 "$state/create.log" >&2 || true
  if grep -l 'address already in use' "$logs"/*.log >/dev/null 2>&1; then
    say "a port kwokctl picked was taken by the time a component started:"
    grep -ho 'listen[^"]*address already in use' "$logs"/*.log | sort -u >&2 || true
  fi
  say "component logs: $logs"
}

cmd_up() {
  cmd_build
  # One start at a time on this machine, whatever the cluster's name: kwokctl
  # picks ports that are free when it looks, so two starts at once can pick
  # the same ones (seen: the second cluster's components fail to bind); and
  # starts of one name (each pytest-xdist worker asks for the cluster) could
  # clear each other's half-started cluster and share one create.log.
  lock "${TMPDIR:-/tmp}/jobwarden-cluster-up.lock" 300 "another cluster to start"
  if api_ready; then
    # kube-controller-manager and kube-scheduler exit when they cannot renew their
    # leases (a loaded machine); kwokctl starts whatever is not running.
    without_locks "$bin/kwokctl" start cluster --name "$name" >/dev/null 2>&1 || true
    say "cluster '$name' is already up"
    echo "$kubeconfig"
    return
  fi
  # A half-started cluster from an earlier run is cleared first.
  "$bin/kwokctl" delete cluster --name "$name" >/dev/null 2>&1 || true
  write_config
  rm -f "$kubeconfig"
  local start=$SECONDS
  say "starting cluster '$name'..."
  # kwokctl can report success for a cluster whose components failed to
  # start, so readiness is checked here as well.
  without_locks "$bin/kwokctl" create cluster --name "$name" --config "$state/kwokctl.yaml" \
    --kubeconfig "$kubeconfig" --wait 90s >"$state/create.log" 2>&1 || {
    explain_failure "kwokctl could not create cluster '$name'"
    exit 1
  }
  local ready_by=$((SECONDS + 30))
  until api_ready; do
    if ((SECONDS > ready_by)); then
      explain_failure "the API server of '$name' is not ready $((SECONDS - start))s after start"
      exit 1
    fi
    sleep 0.5
  done
  "$bin/kubectl" --kubeconfig "$kubeconfig" apply -f "$here/nodes.yaml" >/dev/null
  say "API server ready in $((SECONDS - start))s; kubeconfig: $kubeconfig"
  echo "$kubeconfig"
}

cmd_down() {
  if [ -x "$bin/kwokctl" ]; then "$bin/kwokctl" delete cluster --name "$name" >&2 || true; fi
  rm -f "$kubeconfig"
}

cmd_status() {
  local b
  for b in "${binaries[@]}"; do
    if built "$b"; then echo "built    $b"; else echo "missing  $b"; fi
  done
  if api_ready; then echo "cluster  $name up ($kubeconfig)"; else echo "cluster  $name down"; fi
}

case "${1:-}" in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  bin-dir) echo "$bin" ;;
  kubeconfig) echo "$kubeconfig" ;;
  workdir) echo "${KWOK_WORKDIR:-$HOME/.kwok}/clusters/$name" ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
