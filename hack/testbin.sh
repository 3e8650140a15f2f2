#!/usr/bin/env bash
# Builds Kubernetes test binaries from the Go module proxy into a cache directory outside the repo:
#   ${EKSLINK_TESTBIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ekslink/testbin/<k8s>-<etcd>}
#
#   hack/testbin.sh            kube-apiserver and etcd (the control plane of envtest)
#   hack/testbin.sh NAME...    the named binaries: etcd or any k8s.io/kubernetes/cmd/NAME
#                              (make nodebin: kubelet kube-controller-manager kube-scheduler)
#
# Idempotent: builds only the binaries that are missing. Each one is written to NAME.tmp and then
# renamed, so tests running at the same time never see a partial or replaced binary.
# Prints the directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/testbin.env"
dir=${EKSLINK_TESTBIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ekslink/testbin/${KUBERNETES_VERSION}-${ETCD_VERSION}}
[ $# -gt 0 ] || set -- kube-apiserver etcd
missing=()
for name in "$@"; do
  case $name in
    etcd | kube-apiserver | kubelet | kube-controller-manager | kube-scheduler | kube-proxy) ;;
    *) echo "testbin.sh: unknown binary $name (etcd or a k8s.io/kubernetes/cmd name)" >&2; exit 2 ;;
  esac
  [ -x "$dir/$name" ] || missing+=("$name")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
work=$(mktemp -d "${dir}/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS=-mod=mod GOWORK=off GOTOOLCHAIN=local
go mod init ekslink.test/testbin >/dev/null 2>&1
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging paths;
# point each at the published module of the matching minor version instead.
staging=v0${KUBERNETES_VERSION#v1}
gomod=$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
{
  echo "require k8s.io/kubernetes ${KUBERNETES_VERSION}"
  echo "require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}"
  grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
} >> go.mod
mkdir -p etcd
cat > etcd/main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
{
  printf '//go:build tools\n\npackage tools\n\n'
  for name in "${missing[@]}"; do
    [ "$name" = etcd ] || printf 'import _ "k8s.io/kubernetes/cmd/%s"\n' "$name"
  done
} > tools.go
go mod tidy >/dev/null
for name in "${missing[@]}"; do
  pkg=k8s.io/kubernetes/cmd/$name
  [ "$name" = etcd ] && pkg=./etcd
  start=$(date +%s)
  go build -trimpath -ldflags=-s -o "$dir/$name.tmp" "$pkg"
  mv "$dir/$name.tmp" "$dir/$name"
  echo "testbin.sh: built $name in $(($(date +%s) - start))s" >&2
done
echo "$dir"
