import Foundation

/// Deletes pins the runner created (per case, at the end of a run, and in `--cleanup-only`).
enum PinDeletion {
    /// Deletes one tracked pin; returns a problem description, or nil when it is gone.
    static func delete(_ pin: TrackedPin, target: ConformanceTarget, options: ConformanceOptions) async -> String? {
        let token = pin.tenant == .tenantA ? target.tokenA : target.tokenB
        guard let token else { return "no token for \(pin.tenant.rawValue)" }
        let request = ConformanceRequest(
            method: "DELETE",
            path: "/pins/" + PercentEncoding.pathSegment(pin.requestID),
            headers: [("User-Agent", options.userAgent), ("Authorization", "Bearer \(token)")]
        )
        do {
            let response = try await target.transport.send(request)
            if (200..<300).contains(response.status) || response.status == 404 {
                await options.ledger?.forget(pin)
                return nil
            }
            return "DELETE answered \(response.status)"
        } catch {
            return "DELETE failed: \(error)"
        }
    }
}
