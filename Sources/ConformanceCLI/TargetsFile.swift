import ConformanceKit
import Foundation
import Yams

/// `--targets FILE`: the services of a matrix run. Tokens never sit in the file itself: each
/// comes from an environment variable or a file (relative paths are relative to the YAML file).
///
/// ```yaml
/// targets:
///   - name: reference
///     url: http://127.0.0.1:8080
///     token-env: REF_TOKEN          # or token-file: secrets/ref-token
///     token-b-file: secrets/ref-b   # optional second tenant (token-b-env also works)
///     capabilities: [resolves-cids] # optional
/// ```
struct TargetsFile {
    struct Entry: Decodable {
        var name: String
        var url: String
        var tokenEnv: String?
        var tokenFile: String?
        var tokenBEnv: String?
        var tokenBFile: String?
        var capabilities: [String]?

        enum CodingKeys: String, CodingKey {
            case name, url, capabilities
            case tokenEnv = "token-env"
            case tokenFile = "token-file"
            case tokenBEnv = "token-b-env"
            case tokenBFile = "token-b-file"
        }
    }

    struct Document: Decodable {
        var targets: [Entry]
    }

    /// A target with its tokens read.
    struct Target {
        var name: String
        var url: String
        var token: String
        var tokenB: String?
        var capabilities: [String]
    }

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    static func load(_ path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [Target] {
        let url = URL(fileURLWithPath: path)
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw Problem(description: "--targets \(path): cannot read the file")
        }
        let document: Document
        do {
            document = try YAMLDecoder().decode(Document.self, from: text)
        } catch {
            throw Problem(description: "--targets \(path): not a targets file (targets: [{name, url, token-env | token-file, …}]): \(error)")
        }
        guard !document.targets.isEmpty else { throw Problem(description: "--targets \(path): no targets") }
        let base = url.deletingLastPathComponent()
        var names = Set<String>()
        return try document.targets.map { entry in
            guard names.insert(entry.name).inserted else { throw Problem(description: "--targets \(path): target name \(entry.name) appears twice") }
            if let problem = Conformance.targetProblem(entry.url) { throw Problem(description: "target \(entry.name): \(problem)") }
            guard
                let token = try secret(env: entry.tokenEnv, file: entry.tokenFile, base: base, environment: environment, what: "\(entry.name) token")
            else { throw Problem(description: "target \(entry.name): give token-env or token-file") }
            let tokenB = try secret(env: entry.tokenBEnv, file: entry.tokenBFile, base: base, environment: environment, what: "\(entry.name) token-b")
            return Target(name: entry.name, url: entry.url, token: token, tokenB: tokenB, capabilities: entry.capabilities ?? [])
        }
    }

    private static func secret(env: String?, file: String?, base: URL, environment: [String: String], what: String) throws -> String? {
        if let env {
            guard let value = environment[env]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else {
                throw Problem(description: "\(what): environment variable \(env) is unset or empty")
            }
            return value
        }
        if let file {
            let url = file.hasPrefix("/") ? URL(fileURLWithPath: file) : base.appendingPathComponent(file)
            guard let value = try? String(contentsOf: url, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty
            else { throw Problem(description: "\(what): cannot read a token from \(url.path)") }
            return value
        }
        return nil
    }
}
