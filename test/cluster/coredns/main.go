// CoreDNS with only the plugins the test node's cluster DNS uses (node.sh runs it in the node's
// network namespace): the kubernetes zone from the API, everything else forwarded to the host
// end of the node's link, where a test may run dnsmasq. The upstream build links every plugin
// (cloud DNS providers and their SDKs), minutes more to compile for nothing used here.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	// The order in which the plugins handle a query (upstream: plugin.cfg).
	dnsserver.Directives = []string{"bind", "errors", "log", "health", "ready", "cache", "kubernetes", "forward"}
}

func main() { coremain.Run() }
