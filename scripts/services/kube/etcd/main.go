// Command etcd is etcd's own server entry point, linked from go.etcd.io/etcd/server/v3 at the version
// k8s.io/kubernetes requires (etcd's server module cannot be `go install`ed: its go.mod replaces ../api).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
