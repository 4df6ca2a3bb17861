/// The frame of the self-contained HTML pages (single-target report and matrix): inline CSS,
/// no scripts, no external assets, system fonts. Outcomes are spelt out next to their symbol,
/// so colour is never the only signal.
enum HTMLPage {
    static func wrap(title: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(Markup.escape(title))</title>
        <style>
        \(css)
        </style>
        </head>
        <body>
        <main>
        \(body)
        </main>
        </body>
        </html>

        """
    }

    /// A table cell's class and text for an outcome (`binding`: the failure fails the run).
    static func outcome(_ outcome: CaseResult.Outcome, binding: Bool) -> (cls: String, text: String) {
        switch outcome {
        case .passed: return ("pass", "✓ pass")
        case .skipped: return ("skip", "– skipped")
        case .failed: return binding ? ("fail", "✗ FAIL") : ("warn", "⚠ fail (not binding)")
        }
    }

    static let css = """
        :root { color-scheme: light; --fg: #1b1f23; --muted: #57606a; --line: #d0d7de; }
        body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); margin: 0; background: #fff; }
        main { max-width: 72rem; margin: 0 auto; padding: 1.5rem; }
        h1 { font-size: 1.5rem; margin: 0 0 .5rem; }
        h2 { font-size: 1.15rem; margin: 1.75rem 0 .5rem; }
        p.meta, .muted { color: var(--muted); }
        p.summary { font: 600 1rem/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; padding: .5rem .75rem; border-left: 4px solid var(--line); background: #f6f8fa; }
        p.summary.ok { border-color: #1a7f37; } p.summary.bad { border-color: #cf222e; }
        table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
        caption { text-align: left; font-weight: 600; padding: .25rem 0; }
        th, td { border: 1px solid var(--line); padding: .3rem .5rem; vertical-align: top; text-align: left; }
        th[scope=col] { background: #f6f8fa; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        code { font: .85em ui-monospace, SFMono-Regular, Menlo, monospace; }
        .pass { background: #dafbe1; color: #0f5323; }
        .fail { background: #ffebe9; color: #82071e; font-weight: 700; }
        .warn { background: #fff8c5; color: #633c01; }
        .skip { background: #f6f8fa; color: var(--muted); }
        tr.differs th[scope=row] { box-shadow: inset 4px 0 0 #cf222e; }
        .level { font-size: .8em; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
        details { margin: .25rem 0 1rem; } summary { cursor: pointer; }
        pre { white-space: pre-wrap; word-break: break-word; background: #f6f8fa; padding: .5rem; border: 1px solid var(--line); font-size: .85em; }
        """
}
