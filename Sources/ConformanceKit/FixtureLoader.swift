import Foundation

/// Errors from ``FixtureLoader/load(from:)``: one message per unreadable or undecodable file.
public struct FixtureLoadError: Error, CustomStringConvertible, Sendable {
    public var problems: [String]
    public var description: String { problems.joined(separator: "\n") }
}

/// Finds, decodes and lints fixture files.
public enum FixtureLoader {
    /// Top-level directories (below the version directory) a case may live in.
    public static let knownGroups: Set<String> = [
        "auth", "pins-add", "pins-get", "pins-list", "pins-list-filters", "pins-pagination", "pins-replace",
        "pins-delete", "tenancy", "errors", "compliance", "kubo", "optional", "tentative",
    ]

    /// Loads every `*.json` case below `directory` (recursively), sorted by id.
    ///
    /// `fixture.schema.json` and files under an `expectations/` directory are not cases. Each
    /// fixture's ``Fixture/sourcePath`` is set relative to the suite root: the nearest directory
    /// at or above `directory` that holds `fixture.schema.json` (or `directory` itself).
    public static func load(from directory: URL) throws -> [Fixture] {
        let root = suiteRoot(for: directory)
        var fixtures: [Fixture] = []
        var problems: [String] = []
        let decoder = JSONDecoder()
        for file in caseFiles(in: directory) {
            let relative = relativePath(of: file, to: root)
            do {
                let data = try Data(contentsOf: file)
                var fixture = try decoder.decode(Fixture.self, from: data)
                fixture.sourcePath = relative
                fixtures.append(fixture)
            } catch let error as DecodingError {
                problems.append("\(relative): \(describe(error))")
            } catch {
                problems.append("\(relative): \(error)")
            }
        }
        if !problems.isEmpty { throw FixtureLoadError(problems: problems) }
        return fixtures.sorted { $0.id < $1.id }
    }

    /// Checks every case file below `directory` against the fixture schema
    /// (`Fixtures/pinning-api/fixture.schema.json`): strict JSON (no duplicate keys), known keys
    /// only, the right types and enum values. Returns one message per problem.
    public static func schemaProblems(in directory: URL) -> [String] {
        let root = suiteRoot(for: directory)
        var problems: [String] = []
        for file in caseFiles(in: directory) {
            let relative = relativePath(of: file, to: root)
            guard let data = try? Data(contentsOf: file) else {
                problems.append("\(relative): unreadable")
                continue
            }
            do {
                let value = try JSONParser.parse(Array(data))
                var checker = StructureChecker(file: relative)
                checker.fixture(value)
                problems += checker.problems
            } catch {
                problems.append("\(relative): \(error.description)")
            }
        }
        return problems
    }

    /// Lints a loaded suite. `schemaErrors` (from ``schemaProblems(in:)``) are included first.
    ///
    /// Checks: unique ids and descriptions; id equals the file path; ids are
    /// `v<version>/<known group>/<kebab-case-name>`; descriptions are statements (no "should",
    /// no "test that"); every case names at least one known spec operation with a rule; step
    /// names are unique; no hard-coded hosts (`http://`, `https://`) or token-looking strings
    /// (JWTs, `Bearer …`, an `Authorization` header) outside descriptions and comments; every
    /// placeholder is defined (generators are well-formed, captures come from earlier steps);
    /// matcher keywords and `$type` names exist; `tenantB` is used only with `requires.tenants: 2`;
    /// `optional/` cases carry the `optional` tag and no other case does; `supersedes` names a case;
    /// every case has a level and a clause whose quote is found in `spec` (``ClauseCheck``).
    public static func lint(_ fixtures: [Fixture], schemaErrors: [String] = [], spec: String? = nil) -> [String] {
        var problems = schemaErrors + ClauseCheck.problems(fixtures, spec: spec)
        var ids: [String: Int] = [:]
        var descriptions: [String: String] = [:]
        let allIDs = Set(fixtures.map(\.id))
        for f in fixtures {
            let at = f.sourcePath ?? f.id
            ids[f.id, default: 0] += 1
            if let other = descriptions[f.description.lowercased()], other != f.id {
                problems.append("\(at): description duplicates \(other)")
            } else {
                descriptions[f.description.lowercased()] = f.id
            }
            problems += lintOne(f, allIDs: allIDs).map { "\(at): \($0)" }
        }
        for (id, n) in ids.sorted(by: { $0.key < $1.key }) where n > 1 {
            problems.append("duplicate id \(id) (\(n) files)")
        }
        return problems
    }

    // MARK: - Per-fixture lint

    static func lintOne(_ f: Fixture, allIDs: Set<String>) -> [String] {
        var p: [String] = []
        if let source = f.sourcePath {
            let expected = source.hasSuffix(".json") ? String(source.dropLast(5)) : source
            if f.id != expected { p.append("id \"\(f.id)\" does not match its path \"\(expected)\"") }
        }
        let parts = f.id.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.count != 3 {
            p.append("id must be <version>/<group>/<name>, got \"\(f.id)\"")
        } else {
            if parts[0].range(of: "^v\\d+\\.\\d+\\.\\d+$", options: .regularExpression) == nil {
                p.append("id must start with a version directory like v1.0.0")
            }
            if !knownGroups.contains(parts[1]) { p.append("unknown group directory \"\(parts[1])\"") }
            if parts[2].range(of: "^[a-z0-9]+(-[a-z0-9]+)*$", options: .regularExpression) == nil {
                p.append("file name \"\(parts[2])\" is not kebab-case")
            }
            let isOptionalDir = parts[1] == "optional"
            let hasTag = (f.tags ?? []).contains("optional")
            if isOptionalDir && !hasTag { p.append("cases in optional/ need the tag \"optional\"") }
            if !isOptionalDir && hasTag { p.append("the tag \"optional\" is only for cases in optional/") }
        }
        let description = f.description.trimmingCharacters(in: .whitespaces)
        if description.isEmpty { p.append("description is empty") }
        let lower = description.lowercased()
        if lower.range(of: "\\bshould\\b", options: .regularExpression) != nil {
            p.append("description says \"should\"; state the behaviour instead")
        }
        if lower.contains("test that") || lower.contains("tests that") || lower.hasPrefix("test ") {
            p.append("description starts like a test name; state the behaviour instead")
        }
        if f.spec.isEmpty { p.append("spec names no operation") }
        for ref in f.spec {
            if !SpecReference.knownOperations.contains(ref.operation) {
                p.append("unknown spec operation \"\(ref.operation)\"")
            }
            if ref.rule.trimmingCharacters(in: .whitespaces).isEmpty { p.append("spec rule is empty") }
        }
        if f.steps.isEmpty { p.append("no steps") }
        if let cleanup = f.cleanup, cleanup != "auto" { p.append("cleanup must be \"auto\"") }
        if let s = f.supersedes, !allIDs.contains(s) { p.append("supersedes unknown case \(s)") }
        if let r = f.requires?.tenants, !(1...2).contains(r) { p.append("requires.tenants must be 1 or 2") }
        for c in f.requires?.capabilities ?? [] where c.range(of: "^[a-z0-9]+(-[a-z0-9]+)*$", options: .regularExpression) == nil {
            p.append("capability \"\(c)\" is not kebab-case")
        }

        let steps = (f.setup ?? []) + f.steps
        var names = Set<String>()
        for step in steps where !names.insert(step.name).inserted {
            p.append("step name \"\(step.name)\" is not unique")
        }
        let twoTenants = (f.requires?.tenants ?? 1) >= 2
        var defined = Set<String>()
        for step in steps {
            let at = "step \"\(step.name)\""
            let r = step.request
            if r.auth == .tenantB && !twoTenants { p.append("\(at): auth tenantB needs requires.tenants: 2") }
            if r.json != nil && r.body != nil { p.append("\(at): request has both json and body") }
            if r.query != nil && r.rawQuery != nil { p.append("\(at): request has both query and rawQuery") }
            if !r.path.hasPrefix("/") { p.append("\(at): path must start with /") }
            if r.path.contains("?") { p.append("\(at): put the query in query or rawQuery, not in path") }
            for name in (r.headers ?? [:]).keys where name.lowercased() == "authorization" {
                p.append("\(at): sets an Authorization header; use auth instead")
            }
            if let n = step.repeatCount, !(1...1000).contains(n) { p.append("\(at): repeat must be 1…1000") }
            for code in step.expect.status.codes where !(100...599).contains(code) {
                p.append("\(at): status \(code) is not an HTTP status")
            }
            if step.expect.status.codes.isEmpty { p.append("\(at): status list is empty") }
            if let ev = step.eventually {
                if DurationText.parse(ev.within) == nil { p.append("\(at): eventually.within \"\(ev.within)\" is not a duration") }
                if DurationText.parse(ev.every) == nil { p.append("\(at): eventually.every \"\(ev.every)\" is not a duration") }
            }
            // Matchers.
            if let json = step.expect.json { p += matcherProblems(json, at: "\(at) expect.json") }
            for (name, m) in step.expect.headers ?? [:] { p += matcherProblems(m, at: "\(at) expect.headers.\(name)") }
            if let json = step.eventually?.whileMatching?.json { p += matcherProblems(json, at: "\(at) eventually.while") }

            // Strings that go on the wire or into expectations: hosts, tokens, placeholders.
            let iterations: [Int?] = step.repeatCount.map { Array(0..<min($0, 1000)).map(Optional.some) } ?? [nil]
            var stepDefines = Set<String>()
            for i in iterations {
                for s in wireStrings(step) {
                    let text = i.map { s.replacingOccurrences(of: "{{i}}", with: String($0)) } ?? s
                    p += secretAndHostProblems(text, at: at)
                    p += placeholderProblems(text, defined: defined, at: at)
                }
                for name in captureNames(step) {
                    stepDefines.insert(i.map { name.replacingOccurrences(of: "{{i}}", with: String($0)) } ?? name)
                }
            }
            defined.formUnion(stepDefines)
        }
        // Report each message once.
        var seen = Set<String>()
        return p.filter { seen.insert($0).inserted }
    }

    /// Every string a step sends or compares against.
    static func wireStrings(_ step: Step) -> [String] {
        var out: [String] = [step.request.path]
        for item in step.request.query ?? [] { out += [item.name, item.value] }
        if let raw = step.request.rawQuery { out.append(raw) }
        for (k, v) in step.request.headers ?? [:] { out += [k, v] }
        if let json = step.request.json { out += strings(in: json) }
        if let body = step.request.body { out.append(body) }
        if let json = step.expect.json { out += strings(in: json, skippingCaptureNames: true) }
        for (_, m) in step.expect.headers ?? [:] { out += strings(in: m, skippingCaptureNames: true) }
        if let json = step.eventually?.whileMatching?.json { out += strings(in: json, skippingCaptureNames: true) }
        return out
    }

    static func strings(in value: JSONValue, skippingCaptureNames: Bool = false) -> [String] {
        switch value {
        case .string(let s): return [s]
        case .array(let a): return a.flatMap { strings(in: $0, skippingCaptureNames: skippingCaptureNames) }
        case .object(let o):
            var out: [String] = []
            for (k, v) in o {
                if skippingCaptureNames && (k == "$capture" || k == "$collect") { continue }
                if skippingCaptureNames && k == "$match" { continue }  // regexes may contain braces
                out.append(k)
                out += strings(in: v, skippingCaptureNames: skippingCaptureNames)
            }
            return out
        default: return []
        }
    }

    /// Names a step's expectations capture into.
    static func captureNames(_ step: Step) -> [String] {
        func walk(_ v: JSONValue) -> [String] {
            switch v {
            case .array(let a): return a.flatMap(walk)
            case .object(let o):
                var out: [String] = []
                for (k, sub) in o {
                    if k == "$capture" || k == "$collect", let name = sub.stringValue { out.append(name) }
                    out += walk(sub)
                }
                return out
            default: return []
            }
        }
        var out: [String] = []
        if let json = step.expect.json { out += walk(json) }
        for (_, m) in step.expect.headers ?? [:] { out += walk(m) }
        return out
    }

    static func secretAndHostProblems(_ s: String, at: String) -> [String] {
        var p: [String] = []
        let lower = s.lowercased()
        if lower.contains("http://") || lower.contains("https://") {
            p.append("\(at): hard-coded URL in \"\(short(s))\"; targets come from the runner")
        }
        if s.range(of: "eyJ[A-Za-z0-9_-]{6,}\\.[A-Za-z0-9_-]{6,}", options: .regularExpression) != nil {
            p.append("\(at): token-looking string (JWT) in \"\(short(s))\"")
        }
        if s.range(of: "(?i)\\b(bearer|basic)\\s+\\S", options: .regularExpression) != nil {
            p.append("\(at): credentials-looking string in \"\(short(s))\"; use auth")
        }
        return p
    }

    static func placeholderProblems(_ s: String, defined: Set<String>, at: String) -> [String] {
        var p: [String] = []
        var rest = Substring(s)
        while let open = rest.range(of: "{{") {
            let after = rest[open.upperBound...]
            guard let close = after.range(of: "}}") else {
                p.append("\(at): unterminated placeholder in \"\(short(s))\"")
                break
            }
            let expr = String(after[..<close.lowerBound])
            rest = after[close.upperBound...]
            let parts = expr.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            let head = parts.first ?? ""
            for t in parts.dropFirst() {
                let name = t.split(separator: ":").first.map(String.init) ?? t
                if !PlaceholderResolver.transforms.contains(name) {
                    p.append("\(at): unknown transform |\(name) in {{\(expr)}}")
                }
            }
            if head == "i" {
                p.append("\(at): {{i}} outside a repeated step")
                continue
            }
            if head == "run" || head == "now" { continue }
            if head.hasPrefix("now+") || head.hasPrefix("now-") {
                if DurationText.parse(String(head.dropFirst(4))) == nil {
                    p.append("\(at): bad duration in {{\(expr)}}")
                }
                continue
            }
            if let colon = head.firstIndex(of: ":") {
                let kind = String(head[..<colon])
                let key = String(head[head.index(after: colon)...])
                if PlaceholderResolver.generatorKinds.contains(kind) {
                    if key.isEmpty { p.append("\(at): {{\(kind):…}} needs a key") }
                    if kind == "filler", Int(key) == nil { p.append("\(at): {{filler:N}} needs a number") }
                    continue
                }
            }
            if !defined.contains(head) {
                p.append("\(at): undefined placeholder {{\(head)}} (not a generator and not captured by an earlier step)")
            }
        }
        return p
    }

    static func matcherProblems(_ value: JSONValue, at: String) -> [String] {
        var p: [String] = []
        switch value {
        case .array(let a):
            for v in a { p += matcherProblems(v, at: at) }
        case .object(let o):
            let dollar = o.keys.filter { $0.hasPrefix("$") }
            if !dollar.isEmpty && dollar.count != o.count {
                p.append("\(at): object mixes matcher keys (\(dollar.sorted().joined(separator: ", "))) with plain keys")
            }
            for k in dollar where !Matcher.keywords.contains(k) {
                p.append("\(at): unknown matcher \(k)")
            }
            if let t = o["$type"] {
                let names = t.stringValue.map { [$0] } ?? (t.arrayValue?.compactMap(\.stringValue) ?? [])
                if names.isEmpty { p.append("\(at): $type needs a name") }
                for n in names where !Matcher.typeNames.contains(n) {
                    p.append("\(at): unknown $type \"\(n)\"")
                }
            }
            if let m = o["$match"]?.stringValue, (try? NSRegularExpression(pattern: m)) == nil {
                p.append("\(at): $match /\(m)/ is not a valid regular expression")
            }
            for (_, v) in o { p += matcherProblems(v, at: at) }
        default:
            break
        }
        return p
    }

    static func short(_ s: String) -> String { s.count > 80 ? String(s.prefix(80)) + "…" : s }

    // MARK: - Files

    static func caseFiles(in directory: URL) -> [URL] {
        guard
            let enumerator = FileManager.default.enumerator(
                at: directory,
                includingPropertiesForKeys: [.isRegularFileKey],
                options: [.skipsHiddenFiles]
            )
        else { return [] }
        var files: [URL] = []
        for case let url as URL in enumerator {
            guard url.pathExtension == "json", !url.lastPathComponent.hasSuffix(".schema.json") else { continue }
            if url.pathComponents.contains("expectations") { continue }
            files.append(url)
        }
        return files.sorted { $0.path < $1.path }
    }

    static func suiteRoot(for directory: URL) -> URL {
        var current = directory.standardizedFileURL
        for _ in 0..<8 {
            if FileManager.default.fileExists(atPath: current.appendingPathComponent("fixture.schema.json").path) {
                return current
            }
            let parent = current.deletingLastPathComponent()
            if parent.path == current.path { break }
            current = parent
        }
        return directory.standardizedFileURL
    }

    static func relativePath(of file: URL, to root: URL) -> String {
        let f = file.standardizedFileURL.resolvingSymlinksInPath().pathComponents
        let r = root.standardizedFileURL.resolvingSymlinksInPath().pathComponents
        if f.count > r.count, Array(f.prefix(r.count)) == r {
            return f.dropFirst(r.count).joined(separator: "/")
        }
        return file.lastPathComponent
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ c: [any CodingKey]) -> String {
            c.isEmpty ? "$" : "$" + c.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .keyNotFound(let key, let ctx): return "\(path(ctx.codingPath)): missing key \"\(key.stringValue)\""
        case .typeMismatch(_, let ctx): return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        case .valueNotFound(_, let ctx): return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        case .dataCorrupted(let ctx): return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

// MARK: - Structural check mirroring fixture.schema.json

/// Hand-written equivalent of `fixture.schema.json` (no general JSON Schema engine needed).
struct StructureChecker {
    let file: String
    var problems: [String] = []

    init(file: String) { self.file = file }

    mutating func fail(_ path: String, _ message: String) { problems.append("\(file): \(path): \(message)") }

    mutating func object(
        _ v: JSONValue?,
        _ path: String,
        required: [String],
        allowed: Set<String>
    )
        -> [String: JSONValue]?
    {
        guard let v else { return nil }
        guard case .object(let o) = v else {
            fail(path, "must be an object")
            return nil
        }
        for k in required where o[k] == nil { fail(path, "missing required \"\(k)\"") }
        for k in o.keys.sorted() where !allowed.contains(k) { fail(path, "unknown key \"\(k)\"") }
        return o
    }

    mutating func string(_ v: JSONValue?, _ path: String, nonEmpty: Bool = true, oneOf: Set<String>? = nil) {
        guard let v else { return }
        guard case .string(let s) = v else {
            fail(path, "must be a string")
            return
        }
        if nonEmpty && s.isEmpty { fail(path, "must not be empty") }
        if let oneOf, !oneOf.contains(s) { fail(path, "must be one of \(oneOf.sorted().joined(separator: ", "))") }
    }

    mutating func integer(_ v: JSONValue?, _ path: String, range: ClosedRange<Int64>) {
        guard let v else { return }
        guard case .int(let i) = v else {
            fail(path, "must be an integer")
            return
        }
        if !range.contains(i) { fail(path, "must be in \(range.lowerBound)…\(range.upperBound)") }
    }

    mutating func stringArray(_ v: JSONValue?, _ path: String) {
        guard let v else { return }
        guard case .array(let a) = v else {
            fail(path, "must be an array of strings")
            return
        }
        for (i, item) in a.enumerated() { string(item, "\(path)[\(i)]") }
    }

    mutating func fixture(_ v: JSONValue) {
        guard
            let o = object(
                v,
                "$",
                required: ["id", "description", "level", "clause", "spec", "steps"],
                allowed: [
                    "$schema", "id", "description", "level", "clause", "comment", "spec", "tags", "requires", "supersedes", "setup",
                    "steps", "cleanup",
                ]
            )
        else { return }
        string(o["id"], "$.id")
        string(o["description"], "$.description")
        string(o["level"], "$.level", oneOf: Set(ConformanceLevel.allCases.map(\.rawValue)))
        if let c = object(o["clause"], "$.clause", required: ["ref", "quote"], allowed: ["ref", "quote", "note"]) {
            for key in ["ref", "quote", "note"] { string(c[key], "$.clause.\(key)") }
        }
        string(o["comment"], "$.comment")
        string(o["supersedes"], "$.supersedes")
        string(o["cleanup"], "$.cleanup", oneOf: ["auto"])
        stringArray(o["tags"], "$.tags")
        if let spec = o["spec"] {
            if case .array(let refs) = spec, !refs.isEmpty {
                for (i, ref) in refs.enumerated() {
                    let p = "$.spec[\(i)]"
                    if let r = object(ref, p, required: ["operation", "rule"], allowed: ["operation", "rule", "section", "quote"]) {
                        string(r["operation"], "\(p).operation", oneOf: SpecReference.knownOperations)
                        string(r["rule"], "\(p).rule")
                        string(r["section"], "\(p).section")
                        string(r["quote"], "\(p).quote")
                    }
                }
            } else {
                fail("$.spec", "must be a non-empty array")
            }
        }
        if let req = object(o["requires"], "$.requires", required: [], allowed: ["tenants", "capabilities"]) {
            integer(req["tenants"], "$.requires.tenants", range: 1...2)
            stringArray(req["capabilities"], "$.requires.capabilities")
        }
        for key in ["setup", "steps"] {
            guard let list = o[key] else { continue }
            guard case .array(let steps) = list else {
                fail("$.\(key)", "must be an array of steps")
                continue
            }
            if key == "steps" && steps.isEmpty { fail("$.steps", "must not be empty") }
            for (i, s) in steps.enumerated() { step(s, "$.\(key)[\(i)]") }
        }
    }

    mutating func step(_ v: JSONValue, _ path: String) {
        guard
            let o = object(
                v,
                path,
                required: ["name", "request", "expect"],
                allowed: ["name", "repeat", "request", "expect", "eventually"]
            )
        else { return }
        string(o["name"], "\(path).name")
        integer(o["repeat"], "\(path).repeat", range: 1...1000)
        request(o["request"], "\(path).request")
        expectation(o["expect"], "\(path).expect")
        if let ev = object(o["eventually"], "\(path).eventually", required: ["within", "every"], allowed: ["within", "every", "while"]) {
            for k in ["within", "every"] {
                string(ev[k], "\(path).eventually.\(k)")
                if let s = ev[k]?.stringValue, DurationText.parse(s) == nil {
                    fail("\(path).eventually.\(k)", "must be a duration like 500ms, 30s, 2m")
                }
            }
            if let w = object(ev["while"], "\(path).eventually.while", required: [], allowed: ["status", "json"]) {
                status(w["status"], "\(path).eventually.while.status")
            }
        }
    }

    mutating func request(_ v: JSONValue?, _ path: String) {
        guard
            let o = object(
                v,
                path,
                required: ["method", "path"],
                allowed: ["method", "path", "query", "rawQuery", "encoding", "auth", "headers", "json", "body"]
            )
        else { return }
        string(o["method"], "\(path).method", oneOf: ["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD"])
        string(o["path"], "\(path).path")
        string(o["rawQuery"], "\(path).rawQuery", nonEmpty: false)
        string(o["encoding"], "\(path).encoding", oneOf: ["go", "js"])
        string(o["auth"], "\(path).auth", oneOf: Set(AuthMode.allCases.map(\.rawValue)))
        string(o["body"], "\(path).body", nonEmpty: false)
        if let q = o["query"] {
            switch q {
            case .object(let items):
                for (k, val) in items { string(val, "\(path).query.\(k)", nonEmpty: false) }
            case .array(let pairs):
                for (i, pair) in pairs.enumerated() {
                    if case .array(let two) = pair, two.count == 2, two.allSatisfy({ $0.stringValue != nil }) {
                        continue
                    }
                    fail("\(path).query[\(i)]", "must be a [name, value] pair of strings")
                }
            default:
                fail("\(path).query", "must be an object of strings or an array of [name, value] pairs")
            }
        }
        if let h = o["headers"] {
            if case .object(let hs) = h {
                for (k, val) in hs { string(val, "\(path).headers.\(k)", nonEmpty: false) }
            } else {
                fail("\(path).headers", "must be an object of strings")
            }
        }
    }

    mutating func status(_ v: JSONValue?, _ path: String) {
        guard let v else { return }
        switch v {
        case .int: integer(v, path, range: 100...599)
        case .array(let a) where !a.isEmpty:
            for (i, item) in a.enumerated() { integer(item, "\(path)[\(i)]", range: 100...599) }
        default: fail(path, "must be a status code or a non-empty array of status codes")
        }
    }

    mutating func expectation(_ v: JSONValue?, _ path: String) {
        guard
            let o = object(
                v,
                path,
                required: ["status"],
                allowed: ["status", "headers", "json", "emptyBody", "schema", "extra"]
            )
        else { return }
        status(o["status"], "\(path).status")
        string(o["schema"], "\(path).schema", oneOf: ["PinStatus", "PinResults", "Failure", "none"])
        string(o["extra"], "\(path).extra", oneOf: ["allow", "deny"])
        if let e = o["emptyBody"], e.stringValue != nil || e.numberValue != nil || e.arrayValue != nil || e.objectValue != nil {
            fail("\(path).emptyBody", "must be a boolean")
        }
        if let h = o["headers"], h.objectValue == nil { fail("\(path).headers", "must be an object") }
    }
}
