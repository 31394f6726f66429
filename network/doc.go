// Package network gives berth containers bridge networking without a
// daemon: named networks, per-container endpoints (veth pair, address,
// routes), published ports and Docker-compatible /etc/hosts and
// /etc/resolv.conf rendering. It is a library the engine calls; the kernel
// plumbing lives in the subpackages netns (namespaces), bridge (links,
// addresses, routes via netlink), firewall (iptables) and ipam (addresses).
//
// # Flow
//
//	m, _ := network.Open(filepath.Join(root, "network"), network.Options{})
//	m.EnsureDefault(ctx)                       // "bridge" network, Linux bridge berth0
//	m.Create(ctx, network.CreateOptions{...})  // `berth network create`
//
//	nsPath := filepath.Join(runroot, "netns", containerID)
//	netns.New(nsPath)                          // persistent netns; put nsPath in the OCI
//	                                           // spec's linux.namespaces network path
//	ports, _ := network.ParsePortSpecs(pFlags, exposed, publishAll)
//	ep, _ := m.Attach(ctx, "bridge", containerID, nsPath, network.AttachOptions{Ports: ports})
//	hosts, _ := network.Hosts(...); resolv, _ := network.ResolvConf(...)  // bind into the rootfs
//	... runtime create/start ...
//	m.Attach(ctx, "other", containerID, nsPath, ...)   // `network connect` (eth1, ...)
//	m.Detach(ctx, "other", containerID)                // `network disconnect`
//	m.ReleaseNamespace(ctx, containerID, nsPath)       // container rm / stop (unmounts nsPath)
//	m.Reclaim(ctx, liveContainerIDs)                   // engine start, after crashes
//
// --network none: create the netns, attach nothing and call
// bridge.LoopbackUp(nsPath) (Attach does that otherwise). --network host: omit the network
// namespace from the spec. --network container:NAME: use the other
// container's nsPath. These modes need no Manager call; List returns only
// recorded networks, so `network ls` adds "host" and "none" itself.
//
// # Addressing and forwarding
//
// The default network uses 10.77.0.0/16 and networks created without
// --subnet get /24s from 10.78.0.0/15, skipping any that overlap an
// existing network or a host route. Reasons: 172.17-31/16 is Docker's and
// 172.31/16 is also AWS's default VPC; 10.88/16 is podman's; 192.168/16 is
// home LANs; 10.0/16 (Azure), 10.42-43 (k3s), 10.96 and 10.244 (Kubernetes),
// 10.128/9 (GCP auto-mode VPCs) and 100.64/10 (CGNAT, Tailscale) are busy
// too. 10.77-79 has no well-known user; the engine can override both.
//
// Outbound access is masquerading of the subnet leaving through another
// interface (not for --internal networks), with IPv4 forwarding enabled,
// as for Docker's default bridge. Traffic between different berth bridges
// is dropped (ISOLATION chains). Inside one bridge containers talk freely.
//
// Published ports are DNAT rules, reached from PREROUTING (other hosts) and
// from OUTPUT (the host itself, 127.0.0.1 included). Berth uses no userland
// proxy: being daemonless, it has no long-lived process that could own one
// per port, while DNAT lives in the kernel, costs nothing per connection
// and outlives the berth process. Loopback works by enabling
// route_localnet on the bridge and masquerading host-sourced packets into
// it; an INPUT guard drops non-loopback packets to 127.0.0.0/8 that were not
// DNATed (the kube-proxy CVE-2020-8558 mitigation). Port conflicts are
// checked against every endpoint's bindings (same protocol and port, and
// the same host IP or either on all addresses) and by a trial bind that
// catches host processes holding the port. Hairpin mode is on for bridge
// ports. The ports belong to an endpoint (Attach's Ports); a container's
// user of this package decides which of its endpoints carries them, and
// Manager.Publish moves them onto another endpoint when that one goes.
//
// # Firewall
//
// Rules live only in berth's chains (see package firewall), jumped to from
// the built-in chains. Each network and endpoint record stores the exact
// rules it adds, which are deleted one by one; chains and jumps are removed
// when the last network is gone. Options.ChainPrefix renames the chains
// (tests use BERTHTEST).
//
// # State, locking and crash safety
//
// Layout of the state directory given to Open:
//
//	lock             flock taken (exclusively) by every Manager call that
//	                 changes state; List, Inspect and Endpoints read
//	                 state.json and endpoints.json without it (each is only
//	                 replaced by rename)
//	state.json       {"networks": {id: network+rules}}
//	endpoints.json   {"<ctr>/<net>": endpoint+rules}
//	ipam/<netID>.json, ipam/<netID>.lock   address allocations, keyed by container ID
//
// Files are replaced atomically by rename. state.json is written with
// fsyncs (file and directory): networks must survive a power loss.
// endpoints.json and the ipam files are written without any: they belong
// to running containers, which no power loss outlives, and a file that
// comes back older, empty or torn after one is read as what it holds (a
// torn one as empty) and reclaimed like a crash. (A state.json of an
// older berth may still hold "endpoints"; they are used until the first
// save moves them to endpoints.json.) Attach
// allocates the address (ipam, durable), records the endpoint with its veth
// name (deterministic, see bridge.HostVethName), port bindings and exact
// rules with Ready=false, and only then creates the veth and rules, finally
// setting Ready. A kill -9 at any point therefore leaves a record (or, in
// the window between allocation and record, an address owned by the
// container ID); ReleaseAll(containerID) or Reclaim(live IDs) tears down
// whatever exists and forgets it. Every teardown step is idempotent.
// ReleaseNamespace (stop, rm) does not delete veths, which waits ~20 ms
// per pair for RCU grace periods: it takes them off their bridges and
// unmounts the namespace, and the kernel deletes each pair with the
// namespace in the background.
// The lock is held for the whole of an Attach (a few tens of ms), which
// serialises berth processes; IPAM has its own per-pool locks.
//
// # Threads and namespaces
//
// Namespace work runs on goroutines that lock their OS thread, switch it,
// and switch it back before unlocking it (package netns); a thread that
// cannot switch back is discarded. So no thread, the main one included,
// stays in a container's namespace and keeps it alive after the work is
// done, and /proc/self/ns/net is the host namespace. Netlink work in a
// container's namespace uses one socket opened there (bridge.Attach), so
// it needs no switched thread at all.
//
// # Not done yet
//
// Name resolution between containers on user-defined networks is done by
// the engine without a DNS server (berth has no daemon to run one): it
// rewrites, in place, the bind-mounted /etc/hosts of every member of a
// network whenever a container joins or leaves it. So names are container
// names and aliases only, and a resolver that bypasses /etc/hosts does not
// see them. IPv6 is not implemented.
//
// # Other drivers
//
// A network created with another driver than "bridge" (Options.Drivers,
// e.g. "cni" from package network/cni) has no bridge, subnet or rules of
// berth's: the Manager records it and its endpoints exactly as above
// (endpoint recorded, Ready false, before the driver's Attach runs), and
// teardown calls the driver's Detach instead of deleting a veth, rules and
// an address, so ReleaseAll and Reclaim undo crashed attaches of every
// driver alike. Removing such a network forgets the record only.
package network
