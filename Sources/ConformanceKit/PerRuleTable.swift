import Foundation

extension ConformanceReport {
    // MARK: Per-rule table

    struct RuleRow {
        var operation: String
        var rule: String
        var passed = 0
        var failed = 0
        var skipped = 0
        var failing: [String] = []
    }

    func ruleRows() -> [RuleRow] {
        var rows: [String: RuleRow] = [:]
        var order: [String] = []
        for result in results {
            for ref in result.spec {
                let key = ref.operation + "\u{0}" + ref.rule
                if rows[key] == nil {
                    rows[key] = RuleRow(operation: ref.operation, rule: ref.rule)
                    order.append(key)
                }
                switch result.outcome {
                case .passed: rows[key]?.passed += 1
                case .failed:
                    rows[key]?.failed += 1
                    rows[key]?.failing.append(result.id)
                case .skipped: rows[key]?.skipped += 1
                }
            }
        }
        let operationOrder = [
            "addPin", "getPinByRequestId", "getPins", "replacePinByRequestId", "deletePinByRequestId",
        ]
        return order.compactMap { rows[$0] }.sorted { a, b in
            let ia = operationOrder.firstIndex(of: a.operation) ?? operationOrder.count
            let ib = operationOrder.firstIndex(of: b.operation) ?? operationOrder.count
            if ia != ib { return ia < ib }
            if a.operation != b.operation { return a.operation < b.operation }
            return a.rule.lowercased() < b.rule.lowercased()
        }
    }

    /// A plain-text table of results grouped by spec operation and rule, ending with ``summaryLine``.
    ///
    /// A rule passes when every case citing it passed, fails when any failed, and is "n/a" when
    /// all its cases were skipped.
    public func perRuleTable() -> String {
        let rows = ruleRows()
        let ruleWidth = min(72, max(4, rows.map { $0.rule.count }.max() ?? 4))
        let opWidth = max(9, rows.map { $0.operation.count }.max() ?? 9)
        func pad(_ s: String, _ n: Int) -> String {
            if s.count > n { return String(s.prefix(n - 1)) + "…" }
            return s + String(repeating: " ", count: n - s.count)
        }
        func lpad(_ s: String, _ n: Int) -> String {
            String(repeating: " ", count: max(0, n - s.count)) + s
        }
        var out = "Pinning API conformance: \(target) (spec v\(specVersion))\n\n"
        out += pad("operation", opWidth) + "  " + pad("rule", ruleWidth) + "  result  pass  fail  skip\n"
        out += String(repeating: "-", count: opWidth + ruleWidth + 30) + "\n"
        var lastOperation = ""
        for row in rows {
            let verdict = row.failed > 0 ? "FAIL" : (row.passed > 0 ? "pass" : "n/a")
            let op = row.operation == lastOperation ? "" : row.operation
            lastOperation = row.operation
            out += pad(op, opWidth) + "  " + pad(row.rule, ruleWidth) + "  " + pad(verdict, 6)
            out += lpad(String(row.passed), 4) + lpad(String(row.failed), 6) + lpad(String(row.skipped), 6) + "\n"
            for id in row.failing {
                out += pad("", opWidth) + "    ✗ " + id + "\n"
            }
        }
        out += "\n" + summaryLine + "\n"
        return out
    }
}
