/// Splits a SQL script into statements, because the extended query protocol (all postgres-nio
/// speaks) takes one statement at a time. Understands quotes, quoted identifiers, dollar quotes
/// (`$$`, `$fn$`), line and block comments; splits only on top-level semicolons.
public enum SQLScript {
    public static func statements(_ script: String) -> [String] {
        let s = Array(script.unicodeScalars)
        var out: [String] = []
        var current = String.UnicodeScalarView()
        var i = 0
        func flush() {
            let text = String(current).trimmingCharacters(in: " \t\n\r")
            if !text.isEmpty, !Self.onlyComments(text) { out.append(text) }
            current = String.UnicodeScalarView()
        }
        while i < s.count {
            let c = s[i]
            if c == "'" || c == "\"" {
                let quote = c
                current.append(c)
                i += 1
                while i < s.count {
                    current.append(s[i])
                    if s[i] == quote {
                        if i + 1 < s.count, s[i + 1] == quote {  // doubled quote inside
                            current.append(s[i + 1])
                            i += 2
                            continue
                        }
                        i += 1
                        break
                    }
                    i += 1
                }
                continue
            }
            if c == "-", i + 1 < s.count, s[i + 1] == "-" {
                while i < s.count, s[i] != "\n" {
                    current.append(s[i])
                    i += 1
                }
                continue
            }
            if c == "/", i + 1 < s.count, s[i + 1] == "*" {
                while i < s.count, !(s[i] == "*" && i + 1 < s.count && s[i + 1] == "/") {
                    current.append(s[i])
                    i += 1
                }
                if i < s.count {
                    current.append(s[i])
                    current.append(s[i + 1])
                    i += 2
                }
                continue
            }
            if c == "$" {
                // A dollar-quote tag: $[A-Za-z_][A-Za-z0-9_]*$ or $$ (not a $1 parameter).
                var j = i + 1
                while j < s.count, s[j] == "_" || s[j].properties.isAlphabetic || (j > i + 1 && ("0"..."9").contains(s[j])) { j += 1 }
                if j < s.count, s[j] == "$" {
                    let tag = Array(s[i...j])
                    for t in tag { current.append(t) }
                    i = j + 1
                    while i < s.count {
                        if s[i] == "$", i + tag.count <= s.count, Array(s[i..<(i + tag.count)]) == tag {
                            for t in tag { current.append(t) }
                            i += tag.count
                            break
                        }
                        current.append(s[i])
                        i += 1
                    }
                    continue
                }
            }
            if c == ";" {
                flush()
                i += 1
                continue
            }
            current.append(c)
            i += 1
        }
        flush()
        return out
    }

    static func onlyComments(_ text: String) -> Bool {
        text.split(separator: "\n").allSatisfy { $0.trimmingCharacters(in: " \t\r").hasPrefix("--") || $0.trimmingCharacters(in: " \t\r").isEmpty }
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var sub = Substring(self)
        while let f = sub.first, set.contains(f) { sub.removeFirst() }
        while let l = sub.last, set.contains(l) { sub.removeLast() }
        return String(sub)
    }
}
