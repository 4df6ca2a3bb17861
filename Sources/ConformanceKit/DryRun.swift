import Foundation

/// `--dry-run`: the requests a run would send, case by case, without sending any. Values that
/// only a response can supply (captured ids, timestamps) stay as `{{placeholders}}`.
public enum DryRun {
    public static func plan(
        _ fixtures: [Fixture],
        only: String? = nil,
        hasSecondTenant: Bool,
        capabilities: Set<String>
    ) -> (lines: [String], requests: Int) {
        var lines: [String] = []
        var requests = 0
        for f in fixtures {
            if let only, !Glob.matchesID(only, f.id) { continue }
            var header = "\(f.id) [\(f.effectiveLevel.rawValue)]"
            if (f.requires?.tenants ?? 1) >= 2, !hasSecondTenant { header += " (skipped: no second token)" }
            let missing = Set(f.requires?.capabilities ?? []).subtracting(capabilities)
            if !missing.isEmpty { header += " (skipped: needs \(missing.sorted().joined(separator: ", ")))" }
            lines.append(header)
            for step in (f.setup ?? []) + f.steps {
                let r = step.request
                var line = "  \(r.method) \(r.path)"
                var query = (r.query ?? []).map { "\($0.name)=\($0.value)" }
                if let raw = r.rawQuery { query.append(raw) }
                if !query.isEmpty { line += "?" + query.joined(separator: "&") }
                if let json = r.json { line += "  " + json.serialized() } else if let body = r.body { line += "  " + String(body.prefix(80)) }
                line += "  [auth \((r.auth ?? .tenantA).rawValue)]"
                let times = step.repeatCount ?? 1
                if times > 1 { line += " ×\(times)" }
                if let e = step.eventually { line += " (polled every \(e.every), up to \(e.within))" }
                lines.append(line)
                requests += times
            }
        }
        lines.append("plus one DELETE /pins/{requestid} per pin created that a case did not delete itself")
        return (lines, requests)
    }
}
