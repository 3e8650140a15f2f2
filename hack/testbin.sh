#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy into a cache directory outside the repo:
#   ${EKSLINK_TESTBIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ekslink/testbin/<k8s>-<etcd>}
# Idempotent: does nothing when both binaries are already there. Prints the directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/testbin.env"
dir=${EKSLINK_TESTBIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ekslink/testbin/${KUBERNETES_VERSION}-${ETCD_VERSION}}
if [ -x "$dir/kube-apiserver" ] && [ -x "$dir/etcd" ]; then
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
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
go mod tidy >/dev/null
go build -trimpath -ldflags=-s -o "$dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags=-s -o "$dir/etcd.tmp" ./etcd
mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
mv "$dir/etcd.tmp" "$dir/etcd"
echo "$dir"
