import Logging
import Seams

/// The leader lease, as stored under `leader` in `ANCHORAGE_CLUSTER`.
public struct LeaseValue: Sendable, Equatable, Codable {
    public var node: String
    public var fence: Int64
    public var acquiredAt: Int64

    public init(node: String, fence: Int64, acquiredAt: Int64) {
        self.node = node
        self.fence = fence
        self.acquiredAt = acquiredAt
    }
}

/// This node's current term.
struct Lease: Sendable, Equatable {
    var fence: Int64
    var revision: UInt64
    var value: LeaseValue
    var renewAt: Timestamp
    /// Past this without a successful renewal the node stops acting: by then the key may have
    /// expired on the bus and another node may lead.
    var validUntil: Timestamp
}

extension ClusterAgent {
    /// Leader election: a TTL lease created if absent and renewed by compare-and-set on its
    /// revision. The fence token of a term is one more than PostgreSQL's newest, written into
    /// the lease *before* the term is recorded, so two nodes can never record the same term
    /// and a node that wins the key with a stale token is refused by PostgreSQL and lets go.
    func leaderStep() async {
        let now = clock.now()
        if var current = lease {
            if now >= current.validUntil {
                stepDown("lease expired before it could be renewed")
                return
            }
            guard now >= current.renewAt else { return }
            do {
                let revision = try await bus.kvUpdate(
                    ClusterKeys.leader,
                    ClusterJSON.encode(current.value),
                    revision: current.revision,
                    ttl: .seconds(settings.leaseTTLSeconds)
                )
                // Resigned while renewing: `resign()` deletes whichever revision holds the term.
                guard !resigned else { return }
                current.revision = revision
                current.renewAt = now.adding(seconds: settings.leaseRenewSeconds)
                current.validUntil = now.adding(seconds: settings.leaseTTLSeconds - 1)
                lease = current
                status.leaseRenewals += 1
            } catch BusError.conflict {
                stepDown("the lease was taken over")
            } catch {
                logger.warning("could not renew the leader lease", metadata: ["error": "\(error)"])
                lease?.renewAt = now.adding(seconds: 1)
            }
            return
        }
        guard now >= nextCampaign else { return }
        nextCampaign = now.adding(seconds: settings.leaseRenewSeconds)
        do {
            if let entry = try await bus.kvGet(ClusterKeys.leader) {
                let holder = ClusterJSON.decode(LeaseValue.self, entry.value)
                status.leaderFence = holder?.fence
                observeLeader(holder)
                return
            }
            guard state == .active, !resigned else { return }  // a drained or stopping node does not lead
            let fence = try await store.currentFence() + 1
            let value = LeaseValue(node: node.description, fence: fence, acquiredAt: now.microseconds)
            let revision: UInt64
            do {
                revision = try await bus.kvCreate(ClusterKeys.leader, ClusterJSON.encode(value), ttl: .seconds(settings.leaseTTLSeconds))
            } catch BusError.conflict {
                return  // someone else was faster
            }
            guard try await store.beginTerm(fence: fence, node: node, now: now) else {
                try? await bus.kvDelete(ClusterKeys.leader, revision: revision)
                logger.warning("won the lease with a stale fence token; released it", metadata: ["fence": "\(fence)"])
                return
            }
            guard !resigned else {
                try? await bus.kvDelete(ClusterKeys.leader, revision: revision)
                return
            }
            lease = Lease(
                fence: fence,
                revision: revision,
                value: value,
                renewAt: now.adding(seconds: settings.leaseRenewSeconds),
                validUntil: now.adding(seconds: settings.leaseTTLSeconds - 1)
            )
            status.leaderFence = fence
            status.isLeader = true
            status.leaseAcquisitions += 1
            // A new leader looks at the cluster right away, pins short of their factor included:
            // a previous leader's rounds (or this node's own, in an earlier term) may have missed
            // the moment a node's pins were placed on fewer nodes (a liveness blip, a clock step).
            nextSweep = now
            nextRebalance = now
            nextReplicateScan = now
            observeLeader(value, log: false)
            logger.notice("elected leader", metadata: ["node": "\(node)", "fence": "\(fence)"])
        } catch {
            logger.warning("leader election step failed", metadata: ["error": "\(error)"])
        }
    }

    /// Gives up the leader lease, if held, and stops campaigning: the first step of a clean
    /// shutdown, taken before the node stops serving and pinning, so that another node leads
    /// within one campaign interval instead of waiting out the lease TTL. Heartbeats, drain and
    /// the reconciler go on until `stop()`. Idempotent.
    public func resign() async {
        resigned = true
        guard let held = lease else { return }
        lease = nil
        clearLeaderStatus()
        // A renewal in flight may have moved the revision: delete whichever revision still
        // holds this term, and nothing once the key names another term.
        var revision = held.revision
        for _ in 0..<3 {
            do {
                try await bus.kvDelete(ClusterKeys.leader, revision: revision)
                logger.notice("gave up the leader lease", metadata: ["node": "\(node)", "fence": "\(held.fence)"])
                return
            } catch BusError.conflict {
                do {
                    guard let entry = try await bus.kvGet(ClusterKeys.leader),
                        let value = ClusterJSON.decode(LeaseValue.self, entry.value),
                        value.node == node.description, value.fence == held.fence
                    else { return }  // expired or taken over: nothing of ours to give up
                    revision = entry.revision
                } catch {
                    break
                }
            } catch {
                logger.warning(
                    "could not give up the leader lease; it expires by itself",
                    metadata: ["fence": "\(held.fence)", "ttl": "\(settings.leaseTTLSeconds)s", "error": "\(error)"]
                )
                return
            }
        }
        logger.warning("could not give up the leader lease; it expires by itself", metadata: ["fence": "\(held.fence)"])
    }

    func stepDown(_ why: String) {
        guard let lease else { return }
        logger.warning("no longer the leader", metadata: ["fence": "\(lease.fence)", "reason": "\(why)"])
        self.lease = nil
        status.leaseLosses += 1
        clearLeaderStatus()
    }

    private func clearLeaderStatus() {
        status.leaderFence = nil
        status.isLeader = false
        status.counts = nil
        status.maintenance = nil
        status.maintenanceOverdue = false
    }
}
