import Cluster
import ServiceLifecycle

/// The first step of a clean shutdown on a clustered node: the leader gives up its lease while
/// the node still serves, pins and heartbeats, so another node leads within one campaign
/// interval (`cluster.leaderRenewInterval`) rather than after the lease TTL. A service group
/// stops its services in reverse order, so this one must be listed last: after the HTTP
/// server (see ``Node/leaseHandover``).
struct LeaseHandover: Service {
    let node: Node

    func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: the group is being torn down; the lease expires by itself
        }
        await node.runtime.value?.agent.resign()
    }
}
