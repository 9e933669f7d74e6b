//go:build pprof

package main

import (
	"log"
	"net/http"
	_ "net/http/pprof" // profiles for BENCHMARKS.md, only in binaries built with -tags pprof
	"os"
)

// A binary built with -tags pprof serves net/http/pprof on
// CREDITSD_PPROF (for example 127.0.0.1:6060), so the server can be
// profiled under the load generator. Release builds do not contain it.
func init() {
	addr := os.Getenv("CREDITSD_PPROF")
	if addr == "" {
		return
	}
	go func() { log.Println(http.ListenAndServe(addr, nil)) }()
}
