import Cluster
import Foundation
import SimBus
import SimKernel

/// The run as one self-contained HTML page: a per-node timeline in inline SVG (up / down /
/// dead / paused, drained, leader terms, the maintenance window, placement counts), the
/// summary, and the violations with the replay command. No JavaScript.
public enum SimReport {
    public static func html(_ r: SimResult) -> String {
        let width = 1100.0
        let left = 70.0
        let right = 20.0
        let rowH = 46.0
        let top = 40.0
        let plotW = width - left - right
        let total = max(r.virtualSeconds, 1)
        func x(_ t: Double) -> Double { left + plotW * min(max(t / total, 0), 1) }
        let height = top + rowH * Double(r.nodeNames.count) + 50
        var svg = "<svg xmlns='http://www.w3.org/2000/svg' width='\(Int(width))' height='\(Int(height))' font-family='sans-serif' font-size='11'>"
        // Maintenance windows.
        for w in r.maintenanceWindows {
            let a = x(w.on)
            let b = x(w.off ?? total)
            svg +=
                "<rect x='\(f(a))' y='\(f(top - 18))' width='\(f(max(b - a, 1)))' height='\(f(rowH * Double(r.nodeNames.count) + 18))' fill='#fff3c4'/>"
            svg += "<text x='\(f(a + 3))' y='\(f(top - 6))' fill='#8a6d00'>maintenance</text>"
        }
        // Per-node rows from the samples.
        let maxCount = max(r.timeline.flatMap(\.placements).max() ?? 1, 1)
        for (i, name) in r.nodeNames.enumerated() {
            let y = top + rowH * Double(i)
            svg += "<text x='6' y='\(f(y + 20))' font-weight='bold'>\(esc(name))</text>"
            var prev = 0.0
            for s in r.timeline {
                let color: String
                if s.lives[i] == .dead {
                    color = "#444"
                } else if s.lives[i] == .down {
                    color = "#e06666"
                } else if s.paused[i] {
                    color = "#b4a7d6"
                } else if s.states[i] != .active {
                    color = "#f6b26b"
                } else {
                    color = "#93c47d"
                }
                svg += "<rect x='\(f(x(prev)))' y='\(f(y + 8))' width='\(f(max(x(s.at) - x(prev), 0.5)))' height='16' fill='\(color)'/>"
                if s.leader == i {
                    svg += "<rect x='\(f(x(prev)))' y='\(f(y + 4))' width='\(f(max(x(s.at) - x(prev), 0.5)))' height='4' fill='#3d85c6'/>"
                }
                prev = s.at
            }
            // Placement count as a line under the bar.
            var points: [String] = []
            for s in r.timeline {
                points.append("\(f(x(s.at))),\(f(y + 42 - 14 * Double(s.placements[i]) / Double(maxCount)))")
            }
            if !points.isEmpty {
                svg += "<polyline points='\(points.joined(separator: " "))' fill='none' stroke='#333' stroke-width='1'/>"
                if let last = r.timeline.last {
                    svg += "<text x='\(f(width - right + 2))' y='\(f(y + 40))' font-size='9'>\(last.placements[i])</text>"
                }
            }
            for m in r.marks where m.node == i {
                svg += "<line x1='\(f(x(m.at)))' x2='\(f(x(m.at)))' y1='\(f(y + 4))' y2='\(f(y + 28))' stroke='#000'/>"
                svg += "<text x='\(f(x(m.at) + 2))' y='\(f(y + 6))' font-size='9'>\(esc(m.text))</text>"
            }
        }
        // Global marks and the axis.
        let axisY = top + rowH * Double(r.nodeNames.count) + 10
        svg += "<line x1='\(f(left))' x2='\(f(width - right))' y1='\(f(axisY))' y2='\(f(axisY))' stroke='#999'/>"
        let step = niceStep(total)
        var t = 0.0
        while t <= total {
            svg += "<line x1='\(f(x(t)))' x2='\(f(x(t)))' y1='\(f(axisY))' y2='\(f(axisY + 4))' stroke='#999'/>"
            svg += "<text x='\(f(x(t) - 10))' y='\(f(axisY + 16))' fill='#666'>\(Int(t / 60))m</text>"
            t += step
        }
        for m in r.marks where m.node == nil {
            svg += "<line x1='\(f(x(m.at)))' x2='\(f(x(m.at)))' y1='\(f(top - 18))' y2='\(f(axisY))' stroke='#999' stroke-dasharray='3,3'/>"
            svg += "<text x='\(f(x(m.at) + 2))' y='\(f(axisY + 30))' font-size='9' fill='#555'>\(esc(m.text))</text>"
        }
        svg += "</svg>"

        var html = """
            <!doctype html><html><head><meta charset='utf-8'><title>anchorage-sim \(esc(r.scenario)) seed \(r.seed)</title>
            <style>body{font-family:sans-serif;margin:20px} pre{background:#f6f6f6;padding:8px;overflow-x:auto}
            .pass{color:#38761d}.fail{color:#cc0000} .key span{display:inline-block;width:14px;height:10px;margin:0 4px 0 12px}</style></head><body>
            <h1>\(esc(r.scenario)) — seed \(r.seed) — <span class='\(r.passed ? "pass" : "fail")'>\(r.passed ? "PASS" : "FAIL")</span></h1>
            <p class='key'>
            <span style='background:#93c47d'></span>up, active <span style='background:#f6b26b'></span>draining/drained
            <span style='background:#e06666'></span>down <span style='background:#444'></span>dead <span style='background:#b4a7d6'></span>paused
            <span style='background:#3d85c6;height:4px'></span>holds the leader lease <span style='background:#fff3c4'></span>maintenance;
            the line under each bar is the node's placement count (the number at the right: at the end).</p>
            \(svg)
            <h2>Summary</h2><pre>\(esc(r.summary))</pre>
            <h2>Leader terms</h2><pre>\(esc(r.terms.map { "fence \($0.fence): \($0.node.map { r.nodeNames[$0] } ?? "?") from +\(Int($0.at))s" }.joined(separator: "\n")))</pre>
            """
        if let failure = r.failureReport { html += "<h2 class='fail'>Violation</h2><pre>\(esc(failure))</pre>" }
        html += "<h2>Replay</h2><pre>\(esc(r.replay.description))</pre></body></html>\n"
        return html
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    static func esc(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    static func niceStep(_ total: Double) -> Double {
        for m in [1.0, 2, 5, 10, 15, 30, 60, 120] where total / (m * 60) <= 12 { return m * 60 }
        return 240 * 60
    }
}
