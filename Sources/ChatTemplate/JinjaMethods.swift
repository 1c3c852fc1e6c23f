// Attribute and item access, method calls and global functions, as jinja2's
// SandboxedEnvironment.getattr/getitem resolve them for Python objects:
// - `x.name` tries a Python attribute first (so `message.items` is dict.items, a method) and then
//   the key `x['name']`; `x[key]` tries the key first and then, for a string key, the attribute;
// - a miss gives an Undefined value (printed as "", false), not an error; an Undefined base fails;
// - out-of-range list indexes and slices behave as in Python (negative indexes count from the end);
// - ImmutableSandboxedEnvironment forbids methods that modify lists and dicts.
// Globals are those of transformers' chat-template environment: raise_exception, strftime_now,
// and jinja2's range (capped at 100000 items like the sandbox's), dict and namespace.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension JinjaRenderer {
    static let supportedStringMethods: Set<String> = [
        "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "upper", "lower", "title",
        "capitalize", "replace", "find", "count", "join", "islower", "isupper", "removeprefix", "removesuffix",
    ]
    /// dir(str) in Python 3.11, minus dunders: real attributes lorad does not implement.
    static let otherStringAttributes: Set<String> = [
        "casefold", "center", "encode", "expandtabs", "format", "format_map", "index", "isalnum", "isalpha",
        "isascii", "isdecimal", "isdigit", "isidentifier", "isnumeric", "isprintable", "isspace", "istitle",
        "ljust", "maketrans", "partition", "rfind", "rindex", "rjust", "rpartition", "splitlines", "swapcase",
        "translate", "zfill",
    ]
    static let supportedDictMethods: Set<String> = ["get", "items", "keys", "values"]
    static let otherDictAttributes: Set<String> = ["clear", "copy", "fromkeys", "pop", "popitem", "setdefault", "update"]
    static let listAttributes: Set<String> = [
        "append", "clear", "copy", "count", "extend", "index", "insert", "pop", "remove", "reverse", "sort",
    ]
    static let numberAttributes: Set<String> = [
        "as_integer_ratio", "bit_count", "bit_length", "conjugate", "denominator", "from_bytes", "imag",
        "numerator", "real", "to_bytes", "fromhex", "hex", "is_integer",
    ]

    /// object_type_repr in jinja2: how Undefined messages name the object.
    private static func objectDescription(_ value: JinjaValue) -> String {
        if case .none = value { return "None" }
        return "\(value.typeName) object"
    }

    private static func missingAttribute(_ base: JinjaValue, _ name: String) -> JinjaValue {
        .undefined("'\(objectDescription(base))' has no attribute '\(name)'")
    }

    // MARK: - Attribute and item access

    /// `base.name`
    func getAttribute(_ base: JinjaValue, _ name: String) throws -> JinjaValue {
        if case .undefined(let u) = base { throw JinjaFailure.render(u.message) }
        if name.hasPrefix("__") {
            throw JinjaFailure.unsupported("access to the special attribute '\(name)' (the sandbox forbids it)")
        }
        switch base {
        case .dict(let d):
            if JinjaRenderer.supportedDictMethods.contains(name) { return .callable(.method(receiver: base, name: name)) }
            if JinjaRenderer.otherDictAttributes.contains(name) {
                throw JinjaFailure.unsupported("the dict method '\(name)'")
            }
            return d[string: name] ?? JinjaRenderer.missingAttribute(base, name)
        case .string:
            if JinjaRenderer.supportedStringMethods.contains(name) {
                return .callable(.method(receiver: base, name: name))
            }
            if JinjaRenderer.otherStringAttributes.contains(name) {
                throw JinjaFailure.unsupported("the string method '\(name)'")
            }
            return JinjaRenderer.missingAttribute(base, name)
        case .list, .tuple:
            if JinjaRenderer.listAttributes.contains(name) {
                let mutates = !["count", "index", "copy"].contains(name)
                throw JinjaFailure.unsupported("the list method '\(name)'" + (mutates
                    ? " (transformers renders templates in jinja2's ImmutableSandboxedEnvironment, where lists cannot change)"
                    : ""))
            }
            return JinjaRenderer.missingAttribute(base, name)
        case .int, .float, .bool:
            if JinjaRenderer.numberAttributes.contains(name) {
                throw JinjaFailure.unsupported("the number attribute '\(name)'")
            }
            return JinjaRenderer.missingAttribute(base, name)
        case .none:
            return JinjaRenderer.missingAttribute(base, name)
        case .namespace(let ns):
            return ns[name] ?? JinjaRenderer.missingAttribute(base, name)
        case .loop(let loop):
            return try loopAttribute(loop, name)
        case .callable, .iterator, .view:
            throw JinjaFailure.unsupported("attributes of a \(base.typeName) object")
        case .undefined:
            preconditionFailure("handled above")
        }
    }

    private func loopAttribute(_ loop: JinjaLoopState, _ name: String) throws -> JinjaValue {
        switch name {
        case "index": return .int(loop.index0 + 1)
        case "index0": return .int(loop.index0)
        case "revindex": return .int(loop.length - loop.index0)
        case "revindex0": return .int(loop.length - loop.index0 - 1)
        case "first": return .bool(loop.index0 == 0)
        case "last": return .bool(loop.index0 == loop.length - 1)
        case "length": return .int(loop.length)
        case "depth": return .int(1)
        case "depth0": return .int(0)
        case "previtem":
            return loop.index0 > 0 ? loop.items[loop.index0 - 1] : .undefined("there is no previous item")
        case "nextitem":
            return loop.index0 + 1 < loop.length ? loop.items[loop.index0 + 1] : .undefined("there is no next item")
        case "cycle": return .callable(.loopCycle(index0: loop.index0))
        case "changed": throw JinjaFailure.unsupported("loop.changed()")
        default: return JinjaRenderer.missingAttribute(.loop(loop), name)
        }
    }

    /// `base[key]`
    func getItem(_ base: JinjaValue, _ key: JinjaValue) throws -> JinjaValue {
        if case .undefined(let u) = base { throw JinjaFailure.render(u.message) }
        switch base {
        case .dict(let d):
            if key.isHashable, let v = d[key] { return v }
        case .list(let xs), .tuple(let xs), .view(.range(_, _, _), let xs):
            if let i = key.index {
                let j = i < 0 ? i + xs.count : i
                guard j >= 0 && j < xs.count else {
                    return .undefined("\(JinjaRenderer.objectDescription(base)) has no element \(i)")
                }
                return xs[j]
            }
        case .string(let s):
            if let i = key.index {
                let sc = s.unicodeScalars
                let j = i < 0 ? i + sc.count : i
                guard j >= 0 && j < sc.count else {
                    return .undefined("\(JinjaRenderer.objectDescription(base)) has no element \(i)")
                }
                return .string(String(sc[sc.index(sc.startIndex, offsetBy: j)]))
            }
        default:
            break
        }
        // The item lookup failed: jinja2 tries the attribute for a string key.
        if case .string(let name) = key { return try getAttribute(base, name) }
        let shown = (try? key.pyRepr()) ?? key.typeName
        return .undefined("\(JinjaRenderer.objectDescription(base)) has no element \(shown)")
    }

    /// `base[start:stop:step]` with Python's slice rules. jinja2 compiles slices to plain Python
    /// subscripts (not through the sandbox's getitem), so a failure is an error, not undefined.
    /// (Only when the sliced value is a compile-time constant does jinja2 fold the slice through
    /// getitem and print "" instead; lorad fails in that case too, rather than guess.)
    func slice(_ base: JinjaValue, start: JinjaValue?, stop: JinjaValue?, step: JinjaValue?) throws -> JinjaValue {
        if case .undefined(let u) = base { throw JinjaFailure.render(u.message) }
        func bound(_ v: JinjaValue?) throws -> Int? {
            guard let v else { return nil }
            if case .none = v { return nil }
            if case .undefined(let u) = v { throw JinjaFailure.render(u.message) }
            guard let i = v.index else {
                throw JinjaFailure.render("slice indices must be integers or None or have an __index__ method")
            }
            return i
        }
        let lo = try bound(start), hi = try bound(stop)
        let stepValue = try bound(step) ?? 1
        guard stepValue != 0 else { throw JinjaFailure.render("slice step cannot be zero") }
        func indices(_ count: Int) -> [Int] {
            // CPython's PySlice_AdjustIndices
            func adjust(_ v: Int?, _ defaultValue: Int) -> Int {
                guard var v else { return defaultValue }
                if v < 0 {
                    v += count
                    if v < 0 { v = stepValue < 0 ? -1 : 0 }
                } else if v >= count {
                    v = stepValue < 0 ? count - 1 : count
                }
                return v
            }
            let a = adjust(lo, stepValue < 0 ? count - 1 : 0)
            let b = adjust(hi, stepValue < 0 ? -1 : count)
            return Array(stride(from: a, to: b, by: stepValue))
        }
        switch base {
        case .list(let xs): return .list(indices(xs.count).map { xs[$0] })
        case .tuple(let xs): return .tuple(indices(xs.count).map { xs[$0] })
        case .string(let s):
            let sc = Array(s.unicodeScalars)
            return .string(PythonText.string(indices(sc.count).map { sc[$0] }))
        case .view(.range(_, _, _), _):
            throw JinjaFailure.unsupported("slicing a range")
        case .dict:
            throw JinjaFailure.render("unhashable type: 'slice'")
        default:
            throw JinjaFailure.render("'\(base.typeName)' object is not subscriptable")
        }
    }

    // MARK: - Calls

    func call(_ function: JinjaValue, _ args: JinjaCallArguments) throws -> JinjaValue {
        switch function {
        case .undefined(let u):
            throw JinjaFailure.render(u.message)
        case .callable(.global(let name)):
            return try callGlobal(name, args)
        case .callable(.method(let receiver, let name)):
            switch receiver {
            case .string(let s): return try callStringMethod(s, name, args)
            case .dict(let d): return try callDictMethod(d, name, args)
            default: throw JinjaFailure.render("'\(receiver.typeName)' has no method '\(name)'")
            }
        case .callable(.loopCycle(let index0)):
            guard args.keyword.isEmpty else { throw JinjaFailure.render("cycle() takes no keyword arguments") }
            guard !args.positional.isEmpty else { throw JinjaFailure.render("no items for cycling given") }
            return args.positional[index0 % args.positional.count]
        default:
            throw JinjaFailure.render("'\(function.typeName)' object is not callable")
        }
    }

    private func callGlobal(_ name: String, _ args: JinjaCallArguments) throws -> JinjaValue {
        switch name {
        case "raise_exception":
            let a = try args.bind(name, ["message"], required: 1)
            let message = (try? a[0]!.pyStr()) ?? a[0]!.typeName
            throw JinjaFailure(kind: .raised, message: message)
        case "range":
            guard args.keyword.isEmpty else { throw JinjaFailure.render("range() takes no keyword arguments") }
            let ints = try args.positional.map { v -> Int in
                guard let i = v.index else {
                    throw JinjaFailure.render("'\(v.typeName)' object cannot be interpreted as an integer")
                }
                return i
            }
            let (start, stop, step): (Int, Int, Int)
            switch ints.count {
            case 1: (start, stop, step) = (0, ints[0], 1)
            case 2: (start, stop, step) = (ints[0], ints[1], 1)
            case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
            default: throw JinjaFailure.render("range expected 1 to 3 arguments, got \(ints.count)")
            }
            guard step != 0 else { throw JinjaFailure.render("range() arg 3 must not be zero") }
            let (span, spanOverflow) = stop.subtractingReportingOverflow(start)
            let count = spanOverflow ? Int.max
                : step > 0 ? (span <= 0 ? 0 : (span - 1) / step + 1)
                : (span >= 0 ? 0 : (span + 1) / step + 1)
            guard count <= 100_000 else {
                throw JinjaFailure.render("range too big: the sandbox blocks ranges larger than 100000 items")
            }
            let items = (0..<count).map { JinjaValue.int(start + $0 * step) }
            return .view(.range(start: start, stop: stop, step: step), items)
        case "namespace", "dict":
            guard args.positional.count <= 1 else {
                throw JinjaFailure.render("\(name)() expected at most 1 positional argument")
            }
            var d = JinjaDict()
            if let source = args.positional.first {
                d = try JinjaRenderer.dictFrom(source)
            }
            for (k, v) in args.keyword { d.set(.string(k), v) }
            if name == "dict" { return .dict(d) }
            var attributes: [(name: String, value: JinjaValue)] = []
            for (k, v) in d.entries {
                guard case .string(let s) = k else {
                    throw JinjaFailure.render("namespace() keys must be strings, not \(k.typeName)")
                }
                attributes.append((s, v))
            }
            return .namespace(JinjaNamespace(attributes))
        case "strftime_now":
            let a = try args.bind(name, ["format"], required: 1)
            guard case .string(let format) = a[0]! else {
                throw JinjaFailure.render("strftime() argument 1 must be str, not \(a[0]!.typeName)")
            }
            return .string(try JinjaRenderer.formatTime(format, now: now))
        default:
            throw JinjaFailure.render("'\(name)' is not callable")
        }
    }

    /// dict(x) for a mapping or an iterable of pairs.
    static func dictFrom(_ source: JinjaValue) throws -> JinjaDict {
        if case .dict(let d) = source { return d }
        var d = JinjaDict()
        for (n, item) in try iterate(source).enumerated() {
            let pair = try iterate(item)
            guard pair.count == 2 else {
                throw JinjaFailure.render("dictionary update sequence element #\(n) has length \(pair.count); 2 is required")
            }
            guard pair[0].isHashable else { throw JinjaFailure.render("unhashable type: '\(pair[0].typeName)'") }
            d.set(pair[0], pair[1])
        }
        return d
    }

    private func string(_ v: JinjaValue?, _ function: String, _ parameter: String) throws -> String? {
        guard let v else { return nil }
        if case .none = v { return nil }
        guard case .string(let s) = v else {
            throw JinjaFailure.render("\(function)() argument '\(parameter)' must be str or None, not \(v.typeName)")
        }
        return s
    }

    private func integer(_ v: JinjaValue?, _ function: String, default defaultValue: Int) throws -> Int {
        guard let v else { return defaultValue }
        guard let i = v.index else {
            throw JinjaFailure.render("\(function)(): '\(v.typeName)' object cannot be interpreted as an integer")
        }
        return i
    }

    private func callStringMethod(_ s: String, _ name: String, _ args: JinjaCallArguments) throws -> JinjaValue {
        let method = "str.\(name)"
        switch name {
        case "strip", "lstrip", "rstrip":
            let a = try args.bind(method, ["chars"], positionalOnly: true)
            let chars = try string(a[0], method, "chars")
            return .string(PythonText.strip(s, chars: chars, left: name != "rstrip", right: name != "lstrip"))
        case "split", "rsplit":
            let a = try args.bind(method, ["sep", "maxsplit"])
            let sep = try string(a[0], method, "sep")
            if sep == "" { throw JinjaFailure.render("empty separator") }
            let maxSplit = try integer(a[1], method, default: -1)
            let parts = name == "split" ? PythonText.split(s, separator: sep, maxSplit: maxSplit)
                : PythonText.rsplit(s, separator: sep, maxSplit: maxSplit)
            return .list(parts.map { .string($0) })
        case "startswith", "endswith":
            let a = try args.bind(method, ["prefix", "start", "end"], required: 1, positionalOnly: true)
            guard a[1] == nil && a[2] == nil else { throw JinjaFailure.unsupported("\(method)() with start/end") }
            let candidates: [JinjaValue]
            if case .tuple(let xs) = a[0]! { candidates = xs } else { candidates = [a[0]!] }
            for c in candidates {
                guard case .string(let p) = c else {
                    throw JinjaFailure.render("\(name) first arg must be str or a tuple of str, not \(c.typeName)")
                }
                if name == "startswith" ? PythonText.hasPrefix(s, p) : PythonText.hasSuffix(s, p) { return .bool(true) }
            }
            return .bool(false)
        case "upper", "lower", "title", "capitalize", "islower", "isupper":
            _ = try args.bind(method, [], positionalOnly: true)
            switch name {
            case "upper": return .string(PythonText.upper(s))
            case "lower": return .string(PythonText.lower(s))
            case "title": return .string(PythonText.title(s))
            case "capitalize": return .string(PythonText.capitalize(s))
            case "islower": return .bool(PythonText.isLower(s))
            default: return .bool(PythonText.isUpper(s))
            }
        case "replace":
            let a = try args.bind(method, ["old", "new", "count"], required: 2, positionalOnly: true)
            guard case .string(let old) = a[0]!, case .string(let new) = a[1]! else {
                throw JinjaFailure.render("replace() arguments must be str")
            }
            return .string(PythonText.replace(s, old, new, count: try integer(a[2], method, default: -1)))
        case "find", "count":
            let a = try args.bind(method, ["sub", "start", "end"], required: 1, positionalOnly: true)
            guard a[1] == nil && a[2] == nil else { throw JinjaFailure.unsupported("\(method)() with start/end") }
            guard case .string(let sub) = a[0]! else {
                throw JinjaFailure.render("must be str, not \(a[0]!.typeName)")
            }
            return .int(name == "find" ? PythonText.find(s, sub) : PythonText.count(s, sub))
        case "join":
            let a = try args.bind(method, ["iterable"], required: 1, positionalOnly: true)
            var parts: [String] = []
            for (n, item) in try JinjaRenderer.iterate(a[0]!).enumerated() {
                guard case .string(let p) = item else {
                    throw JinjaFailure.render("sequence item \(n): expected str instance, \(item.typeName) found")
                }
                parts.append(p)
            }
            return .string(parts.joined(separator: s))
        case "removeprefix", "removesuffix":
            let a = try args.bind(method, ["fix"], required: 1, positionalOnly: true)
            guard case .string(let fix) = a[0]! else { throw JinjaFailure.render("\(name)() argument must be str") }
            let sc = PythonText.scalars(s)
            let n = PythonText.length(fix)
            if name == "removeprefix" {
                return .string(PythonText.hasPrefix(s, fix) ? PythonText.string(sc[n...]) : s)
            }
            return .string(PythonText.hasSuffix(s, fix) && n > 0 ? PythonText.string(sc[..<(sc.count - n)]) : s)
        default:
            throw JinjaFailure.unsupported("the string method '\(name)'")
        }
    }

    private func callDictMethod(_ d: JinjaDict, _ name: String, _ args: JinjaCallArguments) throws -> JinjaValue {
        let method = "dict.\(name)"
        switch name {
        case "get":
            let a = try args.bind(method, ["key", "default"], required: 1, positionalOnly: true)
            guard a[0]!.isHashable else { throw JinjaFailure.render("unhashable type: '\(a[0]!.typeName)'") }
            return d[a[0]!] ?? a[1] ?? .none
        case "items":
            _ = try args.bind(method, [], positionalOnly: true)
            return .view(.dictItems, d.entries.map { .tuple([$0.key, $0.value]) })
        case "keys":
            _ = try args.bind(method, [], positionalOnly: true)
            return .view(.dictKeys, d.keys)
        case "values":
            _ = try args.bind(method, [], positionalOnly: true)
            return .view(.dictValues, d.values)
        default:
            throw JinjaFailure.unsupported("the dict method '\(name)'")
        }
    }

    // MARK: - strftime_now

    /// datetime.now().strftime(format): Python substitutes %f, %z and %Z itself (a naive
    /// datetime has an empty %z and %Z) and hands the rest to the C library's strftime, in the
    /// local time zone, which is what this does too.
    static func formatTime(_ format: String, now: Double) throws -> String {
        var rewritten = ""
        let micro = Int((now - now.rounded(.down)) * 1_000_000)
        var scalars = format.unicodeScalars.makeIterator()
        while let c = scalars.next() {
            guard c == "%" else {
                rewritten.unicodeScalars.append(c)
                continue
            }
            guard let d = scalars.next() else {
                rewritten += "%"
                break
            }
            switch d {
            case "f":
                let digits = String(micro)
                rewritten += String(repeating: "0", count: max(0, 6 - digits.count)) + digits
            case "z", "Z": break
            default:
                rewritten.unicodeScalars.append(c)
                rewritten.unicodeScalars.append(d)
            }
        }
        if rewritten.isEmpty { return "" }
        var seconds = time_t(now.rounded(.down))
        var tmValue = tm()
        guard localtime_r(&seconds, &tmValue) != nil else {
            throw JinjaFailure.render("strftime_now: the current time cannot be converted to local time")
        }
        var capacity = 256
        while capacity <= 1 << 16 {
            var buffer = [CChar](repeating: 0, count: capacity)
            let n = rewritten.withCString { strftime(&buffer, capacity, $0, &tmValue) }
            if n > 0 {
                return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            capacity *= 4
        }
        return ""
    }
}
