"""DNS as the simulated cluster's resolvers and CoreDNS produce it (a mixin of Simulator).

- ndots:5 search-path expansions answered NXDOMAIN before the name that ends the search
  (`api.stripe.com.otel-demo.svc.cluster.local.` ... then `api.stripe.com.`), A and AAAA;
- CoreDNS forwarding external names upstream, and an occasional SERVFAIL from that upstream
  (www.ecb.europa.eu fails a quarter of its lookups);
- now and then a truncated answer asked again over TCP;
- phase `broken`: the frontend's lookups are dropped at its egress by policy;
- phase `dns-overload`: CoreDNS is overloaded: OVERLOAD_LOSS of the queries get no answer
  at all (the resolver retries after DNS_TIMEOUT_NS, then gives up) and the answers that
  come are slow (OVERLOAD_LATENCY_MS).

The methods use the Simulator's state (`_rng`, `_pod_peer`, `_policy_decision`, `_emit`,
...); everything stays a function of the seed and the clock.
"""

from __future__ import annotations

from kcockpit.sim.conns import Conn, Peer
from kcockpit.sim.world import CLUSTER_DOMAIN, Pod
from kcockpit.wire.hubble_pb import flow_pb

US = 1_000
MS = 1_000_000
OBS_TO_PROXY = 1
OVERLOAD_PHASE = "dns-overload"
OVERLOAD_LOSS = 0.4  # share of queries an overloaded CoreDNS never answers
OVERLOAD_LATENCY_MS = (150.0, 900.0)  # and how long the answers it manages take
DNS_CACHE_MISS = 0.12  # share of calls that need a fresh lookup in steady state
DNS_TRUNCATED = 0.03  # share of lookups whose UDP answer is truncated, then retried over TCP
SERVFAIL_NAMES = {"www.ecb.europa.eu": 0.25}
DNS_UPSTREAM = "172.18.0.1"  # the kind network's resolver, where CoreDNS forwards to
RCODE_WORDS = {0: "", 2: "Server Failure", 3: "Non-Existent Domain"}
DNS_TIMEOUT_NS = 2_500_000_000  # resolver timeout between attempts
DNS_PROXY_PORT = 37581


class DnsTraffic:
    """The DNS half of Simulator (see the module docstring)."""

    def _dns_names(self, client: Pod, name: str) -> list[str]:
        """The queries a resolver with ndots:5 sends for `name`, in order."""
        search = [f"{client.namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]
        if name.count(".") >= 5:
            return [name.rstrip(".") + "."]
        return [f"{name}.{domain}." for domain in search] + [f"{name}."]

    def _resolve(self, t: int, client: Pod, name: str, answer_ips: tuple[str, ...], ipv6: tuple[str, ...], phase: str) -> tuple[bool, int]:
        """Look `name` up as the client's resolver does; returns (resolved, time the answer arrived)."""
        dns_service = self.world.service("kube-system", "kube-dns")
        coredns = self._pod_peer(self._rng.choice(self.world.service_pods(dns_service)))
        client_peer = self._pod_peer(client)
        egress, _ = self._policy_decision(phase, client_peer, coredns, "UDP", 53)
        if egress is not None and not egress[0]:
            # Dropped at the client's egress: both attempts of A and AAAA time out.
            for attempt in range(2):
                at = t + attempt * DNS_TIMEOUT_NS
                for qtype_offset in (0, 40 * US):
                    conn = Conn(client_peer, coredns, self._ephemeral_port(), 53, "UDP", ("kube-system", "kube-dns"), 0, ())
                    self._verdict_event(at + qtype_offset, conn, phase, "egress", egress, drop=True)
            return False, t + 2 * DNS_TIMEOUT_NS
        queries = self._dns_names(client, name)
        if "." not in name:
            queries = queries[:1]  # a short service name resolves at the first search domain
        servfail = self._rng.random() < SERVFAIL_NAMES.get(name, 0.0)
        overloaded = phase == OVERLOAD_PHASE
        for index, query in enumerate(queries):
            last = index == len(queries) - 1
            rcode = (2 if servfail else 0) if last else 3
            for _attempt in range(2):
                if not (overloaded and self._rng.random() < OVERLOAD_LOSS):
                    break
                # An overloaded CoreDNS never answers: A and AAAA go out, the resolver waits and retries.
                for qtype in ("A", "AAAA"):
                    conn = Conn(client_peer, coredns, self._ephemeral_port(), 53, "UDP", ("kube-system", "kube-dns"), 0, ())
                    self._dns_over_udp(t, conn, phase, egress, query, qtype, rcode, (), None)
                    t += 30 * US
                t += DNS_TIMEOUT_NS
            else:
                return False, t  # both attempts went unanswered: the lookup fails
            for qtype, ips in (("A", answer_ips), ("AAAA", ipv6)):
                conn = Conn(client_peer, coredns, self._ephemeral_port(), 53, "UDP", ("kube-system", "kube-dns"), 0, ())
                latency = int((0.3 + self._rng.random() * 0.8) * MS)
                if overloaded:
                    low, high = OVERLOAD_LATENCY_MS
                    latency = int((low + self._rng.random() * (high - low)) * MS)
                if last and not query.endswith(f"{CLUSTER_DOMAIN}."):
                    latency += int((8 + self._rng.random() * 25) * MS)  # forwarded upstream
                    upstream = Conn(coredns, self._peers["world:dns-upstream"], self._ephemeral_port(), 53, "UDP", None, 0, ())
                    self._packet(t + 300 * US, upstream, (), False, flow_pb.NEW)
                    self._packet(t + latency - 200 * US, upstream, (), True, flow_pb.REPLY)
                self._dns_over_udp(t, conn, phase, egress, query, qtype, rcode, ips if rcode == 0 else (), latency)
                t += 30 * US
            t += latency
            if last and rcode == 0 and self._rng.random() < DNS_TRUNCATED:
                t = self._dns_over_tcp(t, client_peer, coredns, phase, query, answer_ips)
        return not servfail, t

    def _dns_over_udp(self, t, conn, phase, egress, query, qtype, rcode, ips, latency) -> None:
        if egress is not None:
            self._verdict_event(t, conn, phase, "egress", egress, drop=False)
        to_proxy = self._templates.get(("to-proxy", conn.client.key, conn.server.key))
        if to_proxy is None:
            to_proxy = self._trace_template(conn.client, conn.server, conn.client.node, OBS_TO_PROXY, True, (), False, flow_pb.NEW, conn)
            self._templates[("to-proxy", conn.client.key, conn.server.key)] = to_proxy
        self._emit(t + 5 * US, to_proxy, conn.sport, 53, "UDP")
        self._dns_l7(t + 20 * US, conn, query, qtype, rcode, ips, None if latency is None else latency - 20 * US)

    def _dns_over_tcp(self, t: int, client: Peer, coredns: Peer, phase: str, query: str, ips: tuple[str, ...]) -> int:
        """The answer came back truncated: the resolver asks again over TCP (what dns-tcp 53 is for)."""
        conn, t = self._connect(t, client, coredns, 53, ("kube-system", "kube-dns"), phase, 0)
        if conn is None:
            return t
        latency = int((0.4 + self._rng.random()) * MS)
        self._dns_l7(t, conn, query, "A", 0, ips, latency)
        self._close(t + latency + 100 * US, conn)
        return t + latency + 300 * US

    def _dns_l7(self, t, conn, query, qtype, rcode, ips, latency: int | None) -> None:
        """A DNS request/response pair as the client-side (egress) DNS proxy reports it
        (only the request when `latency` is None: no answer ever came)."""
        node = conn.client.node
        request = self._emit(t, self._l7_template(conn, False, node, flow_pb.EGRESS), conn.sport, 53, conn.proto)
        dns = request.flow.l7.dns
        dns.query, dns.observation_source = query, "proxy"
        dns.qtypes.append(qtype)
        request.flow.Summary = f"DNS Query {query} {qtype}"
        if latency is None:
            return
        response = self._emit(t + latency, self._l7_template(conn, True, node, flow_pb.EGRESS), 53, conn.sport, conn.proto)
        dns = response.flow.l7.dns
        dns.query, dns.observation_source, dns.rcode = query, "proxy", rcode
        dns.qtypes.append(qtype)
        dns.ips.extend(ips)
        if ips:
            dns.rrtypes.append(qtype)
        dns.ttl = 30 if ips else 4294967295
        response.flow.l7.latency_ns = latency
        if rcode:
            answer = f"RCode: {RCODE_WORDS[rcode]}"
        else:
            answer = ",".join(f'"{ip}"' for ip in ips)
        response.flow.Summary = f"DNS Answer {answer} TTL: {dns.ttl} (Proxy {query} {qtype})"

    def _needs_lookup(self, client: Pod, phase: str) -> bool:
        # A frontend whose lookups fail has nothing cached: every call needs DNS.
        if client.labels.get("app") == "frontend" and phase == "broken":
            return True
        return self._rng.random() < DNS_CACHE_MISS
