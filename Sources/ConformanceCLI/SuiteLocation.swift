import Foundation

/// Where the fixtures are: `--fixtures DIR` when given; otherwise installed beside the executable
/// (`<bin>/../share/anchorage-conformance/pinning-api`, as `make install` and a release archive
/// lay them out), then the checkout the executable was built in (`swift build` puts it in
/// `<checkout>/.build/<config>/`), then `Fixtures/pinning-api` below the current directory.
enum SuiteLocation {
    static func candidates(explicit: String?) -> [URL] {
        if let explicit { return [URL(fileURLWithPath: explicit, isDirectory: true).standardizedFileURL] }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let bin = executable.deletingLastPathComponent()
        var out = [bin.appendingPathComponent("../share/anchorage-conformance/pinning-api").standardizedFileURL]
        var dir = bin
        for _ in 0..<4 {
            out.append(dir.appendingPathComponent("Fixtures/pinning-api"))
            dir = dir.deletingLastPathComponent()
        }
        out.append(URL(fileURLWithPath: "Fixtures/pinning-api", isDirectory: true).standardizedFileURL)
        return out
    }

    /// The first candidate that holds a suite (its `fixture.schema.json`), or nil.
    static func find(explicit: String?) -> URL? {
        candidates(explicit: explicit).first {
            FileManager.default.fileExists(atPath: $0.appendingPathComponent("fixture.schema.json").path)
        }
    }

    /// The spec beside the suite (`../spec/ipfs-pinning-service.yaml`), for the clause lint.
    static func spec(besides suite: URL) -> String? {
        let url = suite.deletingLastPathComponent().appendingPathComponent("spec/ipfs-pinning-service.yaml")
        return try? String(contentsOf: url, encoding: .utf8)
    }
}
