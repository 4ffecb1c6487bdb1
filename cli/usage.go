package cli

const usageText = `nsnet: isolated Linux networks from namespaces and veth pairs

Usage: nsnet [OPTIONS] OBJECT COMMAND...

Options (before the object, as in ip):
  -n NS        run the command in the named namespace (like ip -n)
  -br          brief output
  -j           JSON output (shaped like ip -j)
  -4, -6       only IPv4 / IPv6 addresses and routes

The walkthrough commands (iproute2's grammar):
  link add NAME type veth peer name PEER [mtu N]
  link add NAME type bridge [mtu N]
  link del NAME
  link set NAME up|down|netns NS|mtu N|master BRIDGE|nomaster
  link [show [NAME]]
  addr add|del ADDR/LEN dev NAME          (also: a, address)
  addr [show [NAME]]
  route add|del PREFIX|default [via GW] [dev NAME]
  route [show]
  netns add|del NAME
  netns [list]
  netns exec NAME CMD [ARGS...]
  ping [-c COUNT] [-W TIMEOUT] [-i INTERVAL] [-q] ADDR

Tools:
  serve http|tcp|udp IP:PORT      built-in HTTP / echo responder
  fetch [-W SECONDS] URL          GET a URL (exit 7: could not connect)
  sandbox [-- CMD ARGS...]        rootless: a shell in a new user+net+mount namespace
  demo                            replay the walkthrough in a private sandbox

Labs (declarative topologies from a YAML file):
  plan FILE                       print what up would do, as ip commands
  up FILE                         create the lab (idempotent, repairs drift)
  down FILE|LAB                   remove everything the lab made, and only that
  status [LAB]                    what exists, node by node
  labs                            list labs
  exec LAB NODE -- CMD ARGS...    run a command in a node
  check FILE|LAB [--all]          reachability and isolation expectations
  perf LAB FROM TO [-t SECONDS]   TCP throughput FROM -> TO (nsnet runs the receiver in TO)
  perf LAB FROM TO --icmp [-c N] [-i SECONDS] [-W SECONDS]
                                  round trips and loss over N echo requests, N in flight at once
`
