import ConformanceKit
import Foundation

/// `--report FILE` and `--matrix FILE`: the format comes from the extension.
enum ReportFormat: String, CaseIterable {
    case markdown, json, junit, html

    init?(path: String) {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "md", "markdown": self = .markdown
        case "json": self = .json
        case "xml": self = .junit
        case "html", "htm": self = .html
        default: return nil
        }
    }

    static let extensions = ".md (Markdown), .json (JSON), .xml (JUnit XML), .html (HTML)"

    func render(_ report: ConformanceReport, strict: Bool) -> Data {
        switch self {
        case .markdown: return Data(report.markdown(strict: strict).utf8)
        case .json: return report.json(strict: strict)
        case .junit: return Data(report.junit(strict: strict).utf8)
        case .html: return Data(report.html(strict: strict).utf8)
        }
    }
}

enum ReportFiles {
    /// Writes `data` atomically; says where on standard error. Returns false on failure.
    static func write(_ data: Data, to path: String) -> Bool {
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
            Console.say("report written to \(path)")
            return true
        } catch {
            Console.say("error: cannot write \(path): \(error.localizedDescription)")
            return false
        }
    }

    /// `report.json` for target `ref` of a matrix run → `report.ref.json`.
    static func path(_ path: String, forTarget name: String) -> String {
        let url = URL(fileURLWithPath: path)
        let safe = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" })
        return url.deletingPathExtension().path + "." + safe + "." + url.pathExtension
    }
}

/// Standard error, one line at a time (standard output carries only the table and summary).
enum Console {
    static func say(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
