import Foundation

/// Checks that every case cites a clause that exists: the quoted words must appear (whitespace
/// collapsed) within the cited lines of the spec, so a citation cannot drift from the text.
public enum ClauseCheck {
    /// One message per case whose level or clause is missing, malformed or not found in `spec`
    /// (quotes are checked only when `spec` is given)
    /// (the YAML text; a header of comment lines above `openapi:` is skipped, so the repository's
    /// annotated copy numbers lines as the upstream file does).
    public static func problems(_ fixtures: [Fixture], spec: String?) -> [String] {
        let lines = spec.map(upstreamLines)
        var problems: [String] = []
        for f in fixtures {
            let at = f.sourcePath ?? f.id
            if f.level == nil { problems.append("\(at): no level (required, recommended or anchorage)") }
            guard let clause = f.clause else {
                problems.append("\(at): no clause (a spec line range or an RFC section, with a quote)")
                continue
            }
            if clause.quote.trimmingCharacters(in: .whitespaces).isEmpty {
                problems.append("\(at): clause quote is empty")
            }
            if f.level != nil, f.level != .required, (clause.note ?? "").isEmpty {
                problems.append("\(at): a \(f.level!.rawValue) case needs clause.note saying why it is not required")
            }
            if clause.isRFC { continue }
            guard let range = clause.specLines else {
                problems.append("\(at): clause ref \"\(clause.ref)\" is neither \(Clause.specFile)#L<n>[-L<m>] nor RFC <n> §<section>")
                continue
            }
            guard let lines else { continue }
            guard range.upperBound <= lines.count else {
                problems.append("\(at): clause ref \(clause.ref) is past the end of the spec (\(lines.count) lines)")
                continue
            }
            let cited = collapse(lines[(range.lowerBound - 1)...(range.upperBound - 1)].joined(separator: " "))
            if !cited.contains(collapse(clause.quote)) {
                problems.append("\(at): clause quote \"\(clause.quote)\" is not in \(clause.ref): \"\(cited.prefix(160))\"")
            }
        }
        return problems
    }

    /// The spec's lines as upstream numbers them: without a leading comment header.
    static func upstreamLines(_ spec: String) -> [String] {
        let lines = spec.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = lines.firstIndex { $0.hasPrefix("openapi:") } ?? 0
        return Array(lines[start...])
    }

    static func collapse(_ text: String) -> String {
        text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    }
}
