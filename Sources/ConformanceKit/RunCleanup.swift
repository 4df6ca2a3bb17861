import Foundation

/// `--cleanup-only RUN_ID`: deletes what a killed run left on the target: the pins its journal
/// lists, then every pin whose name carries the run id (`<prefix>-<run>-…`), for each tenant.
public struct RunCleanup: Sendable {
    public let target: ConformanceTarget
    public let options: ConformanceOptions

    public init(target: ConformanceTarget, options: ConformanceOptions = ConformanceOptions()) {
        self.target = target
        self.options = options
    }

    public struct Outcome: Sendable {
        /// Pins deleted (or already gone).
        public var deleted: Int = 0
        /// Pins that could not be deleted or listed, one message each.
        public var problems: [String] = []
    }

    public func run(runID: String, journal: [TrackedPin]) async -> Outcome {
        var outcome = Outcome()
        for pin in journal {
            if let problem = await PinDeletion.delete(pin, target: target, options: options) {
                outcome.problems.append("\(pin.tenant.rawValue) \(pin.requestID): \(problem)")
            } else {
                outcome.deleted += 1
            }
        }
        var tenants: [TrackedPin.Tenant] = [.tenantA]
        if target.tokenB != nil { tenants.append(.tenantB) }
        for tenant in tenants {
            await deleteNamed(runID: runID, tenant: tenant, into: &outcome)
        }
        return outcome
    }

    /// Lists the tenant's pins named after the run (all statuses, a partial name match) and
    /// deletes them, until none is left or a round deletes nothing.
    private func deleteNamed(runID: String, tenant: TrackedPin.Tenant, into outcome: inout Outcome) async {
        let token = tenant == .tenantA ? target.tokenA : (target.tokenB ?? "")
        let name = PercentEncoding.query("\(options.namePrefix)-\(runID)", .go)
        let path = "/pins?limit=1000&match=partial&name=\(name)&status=failed%2Cpinned%2Cpinning%2Cqueued"
        for _ in 0..<20 {
            let request = ConformanceRequest(
                method: "GET",
                path: path,
                headers: [("User-Agent", options.userAgent), ("Authorization", "Bearer \(token)")]
            )
            let ids: [String]
            do {
                let response = try await target.transport.send(request)
                guard response.status == 200, let body = try? JSONParser.parse(response.body) else {
                    outcome.problems.append("\(tenant.rawValue): listing the run's pins answered \(response.status)")
                    return
                }
                ids = body["results"]?.arrayValue?.compactMap { $0["requestid"]?.stringValue } ?? []
            } catch {
                outcome.problems.append("\(tenant.rawValue): listing the run's pins failed: \(error)")
                return
            }
            if ids.isEmpty { return }
            var progress = false
            for id in ids {
                let pin = TrackedPin(requestID: id, tenant: tenant)
                if let problem = await PinDeletion.delete(pin, target: target, options: options) {
                    outcome.problems.append("\(tenant.rawValue) \(id): \(problem)")
                } else {
                    outcome.deleted += 1
                    progress = true
                }
            }
            if !progress { return }
        }
    }
}
