import Logging
import Seams

/// `admin rebalance` (without `--dry-run`) asks the leader for one `balance` round through the
/// KV bucket: only the leader holds a fence token, so only it may move placements. The leader
/// answers under `rebalance-result` with the moves it applied.
public struct RebalanceRequest: Sendable, Equatable, Codable {
    public var id: String
    public var by: String
    public var requestedAt: Int64

    public init(id: String, by: String, requestedAt: Timestamp) {
        self.id = id
        self.by = by
        self.requestedAt = requestedAt.microseconds
    }

    public static let key = "rebalance-request"
    public static let resultKey = "rebalance-result"
    /// Requests and results expire: a request no leader picked up does not fire hours later.
    public static let ttl: Duration = .seconds(300)
}

public struct RebalanceResult: Sendable, Equatable, Codable {
    public var requestID: String
    public var fence: Int64
    public var moves: [Move]
    public var skippedForMaintenance: Bool

    public init(requestID: String, fence: Int64, moves: [Move], skippedForMaintenance: Bool) {
        self.requestID = requestID
        self.fence = fence
        self.moves = moves
        self.skippedForMaintenance = skippedForMaintenance
    }
}

extension ClusterAgent {
    /// Picks up an operator's rebalance request, if any: runs a balance round now (or reports
    /// that maintenance prevents it) and publishes the result.
    func serveRebalanceRequest(fence: Int64, maintenance: Bool, now: Timestamp) async {
        do {
            guard let entry = try await bus.kvGet(RebalanceRequest.key),
                let request = ClusterJSON.decode(RebalanceRequest.self, entry.value)
            else { return }
            // Claim it first, so a second leader step does not run it twice.
            try await bus.kvDelete(RebalanceRequest.key, revision: entry.revision)
            var applied: [Move] = []
            if !maintenance {
                applied = try await rebalance(fence: fence, balance: true, now: now)
            }
            let result = RebalanceResult(requestID: request.id, fence: fence, moves: applied, skippedForMaintenance: maintenance)
            try await bus.kvPut(RebalanceRequest.resultKey, ClusterJSON.encode(result), ttl: RebalanceRequest.ttl)
            logger.notice(
                "rebalance requested by an operator",
                metadata: [
                    "by": "\(request.by)", "moves": "\(applied.count)", "maintenance": "\(maintenance)",
                ]
            )
        } catch BusError.conflict {
            return
        } catch let error as ClusterStoreError {
            if case .staleFence = error { stepDown("\(error)") }
        } catch {
            logger.warning("could not serve a rebalance request", metadata: ["error": "\(error)"])
        }
    }
}
