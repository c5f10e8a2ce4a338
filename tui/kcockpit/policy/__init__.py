"""The policy engine: NetworkPolicy (and a Cilium subset) semantics on plain Kubernetes JSON.

- `cluster.Cluster(objects)`: the cluster's objects ({"pods": [...], "networkpolicies": [...]}).
- `engine.Engine(cluster, Options()).evaluate(Connection(src, dst, port, protocol))` ->
  `results.Evaluation` (verdict allowed / denied / not-evaluated, one SideResult per end).
- `flows.connection(record, cluster)` turns a FlowRecord into a Connection;
  `flows.cross_check(evaluation, record)` compares with Hubble's verdict.
- `explain.sentence / details / to_dict` render an Evaluation.
- `fix.propose(cluster, evaluation)` -> verified FixProposals with their blast radius.
- `advise.advise(records, namespace, workload, cluster)` -> least-privilege Advice.
- `targets.resolve(cluster, "ns/name" | ip, port, protocol)` names endpoints like people do.
"""
