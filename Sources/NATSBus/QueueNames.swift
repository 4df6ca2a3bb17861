/// Durable consumer names for work-queue subjects: `pin.jobs.nod_x` → `jobs_nod_x`.
enum QueueNames {
    /// Drops the first token (the stream's common prefix, `pin`), joins the rest with `_`, and
    /// maps anything outside `[A-Za-z0-9_-]` to `_` (consumer names may not contain `.`, `*`, `>`).
    static func consumer(for subject: String) -> String {
        var tokens = subject.split(separator: ".").map(String.init)
        if tokens.count > 1 { tokens.removeFirst() }
        let bytes = tokens.joined(separator: "_").utf8.map { c -> UInt8 in
            let ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 || c == 45
            return ok ? c : 95
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
