import Foundation
import LocalProcess
import Testing

/// Validation by the tools CI systems and JSON-Schema users run: `xmllint` (Debian
/// libxml2-utils) for JUnit XML against `junit.xsd`, Python's `jsonschema` (Debian
/// python3-jsonschema) for the JSON report. A missing tool is a recorded test failure, never a
/// silent pass; `.ci/run` installs both.
enum ExternalValidators {
    static func tool(_ candidates: [String]) -> String? {
        candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// xmllint's verdict on `file` against `Tests/Conformance/junit.xsd`; nil when it validates.
    static func junitProblems(_ file: URL) throws -> String? {
        guard let xmllint = tool(["/usr/bin/xmllint", "/usr/local/bin/xmllint"]) else {
            Issue.record("xmllint is missing: apt-get install libxml2-utils (the JUnit report was NOT validated)")
            return "xmllint missing"
        }
        let xsd = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("junit.xsd").path
        let (code, output) = try ChildProcess.run(xmllint, ["--noout", "--schema", xsd, file.path])
        return code == 0 ? nil : output
    }

    /// jsonschema's verdict on `file` against `schema`; nil when it validates.
    static func jsonProblems(_ file: URL, schema: URL) throws -> String? {
        let script = """
            import json, sys
            import jsonschema
            schema = json.load(open(sys.argv[1]))
            jsonschema.Draft202012Validator.check_schema(schema)
            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(json.load(open(sys.argv[2]))), key=str)
            for e in errors[:20]: print(list(e.absolute_path), e.message[:300])
            sys.exit(1 if errors else 0)
            """
        for python in ["/usr/bin/python3", "/usr/local/bin/python3"] where FileManager.default.isExecutableFile(atPath: python) {
            let (probe, _) = try ChildProcess.run(python, ["-c", "import jsonschema"])
            guard probe == 0 else { continue }
            let (code, output) = try ChildProcess.run(python, ["-c", script, schema.path, file.path])
            return code == 0 ? nil : output
        }
        Issue.record("python3 with jsonschema is missing: apt-get install python3-jsonschema (the JSON report was NOT validated)")
        return "jsonschema missing"
    }
}
