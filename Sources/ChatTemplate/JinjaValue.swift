// Runtime values of the Jinja interpreter and the Python semantics jinja2 gives them: truth,
// equality, ordering, str() and repr(), as in CPython 3.11 and jinja2 3.1's runtime.Undefined.
//
// A value lives only for one render. Namespaces and iterators are reference types because
// Python's are: `{% set ns.x = ... %}` is visible through every reference, and a generator
// (the result of select/map/...) is used up by the first loop over it.

/// jinja2's default Undefined: printing gives "", truth is False, iteration is empty, length is
/// 0, == is true only against another undefined; attribute access, calls and arithmetic fail.
struct JinjaUndefined {
    /// jinja2's message for the failure, e.g. "'foo' is undefined".
    var message: String
}

/// namespace(): the one mutable object templates can assign attributes to.
final class JinjaNamespace {
    var attributes: [(name: String, value: JinjaValue)]

    init(_ attributes: [(name: String, value: JinjaValue)]) {
        self.attributes = attributes
    }

    subscript(name: String) -> JinjaValue? {
        get { attributes.first(where: { $0.name == name })?.value }
        set {
            guard let newValue else { return }
            if let i = attributes.firstIndex(where: { $0.name == name }) {
                attributes[i].value = newValue
            } else {
                attributes.append((name, newValue))
            }
        }
    }
}

/// A one-shot Python iterator (generator, list_reverseiterator, dict_itemiterator...).
final class JinjaIterator {
    let typeName: String
    private let items: [JinjaValue]
    private var position = 0

    init(_ typeName: String, _ items: [JinjaValue]) {
        self.typeName = typeName
        self.items = items
    }

    /// The items not consumed yet; consumes them.
    func drain() -> [JinjaValue] {
        defer { position = items.count }
        return Array(items[position...])
    }

    func next() -> JinjaValue? {
        guard position < items.count else { return nil }
        defer { position += 1 }
        return items[position]
    }
}

/// Re-iterable views with a length: dict.keys()/values()/items() and range().
enum JinjaViewKind {
    case dictKeys, dictValues, dictItems
    case range(start: Int, stop: Int, step: Int)
}

/// The `loop` variable of one iteration.
struct JinjaLoopState {
    var index0: Int
    /// All items of the loop (shared storage, not copied per iteration).
    var items: [JinjaValue]
    var length: Int { items.count }
}

enum JinjaCallable {
    /// A global function: raise_exception, range, namespace, dict, strftime_now.
    case global(String)
    /// A bound method such as `message.content.strip` or `message.get`.
    case method(receiver: JinjaValue, name: String)
    /// loop.cycle
    case loopCycle(index0: Int)
}

/// An insertion-ordered Python dict. Lookups compare keys with Python's ==, so 1, 1.0 and True
/// are the same key, as in Python. Linear search: template dicts are small.
struct JinjaDict {
    private(set) var entries: [(key: JinjaValue, value: JinjaValue)] = []

    init() {}

    var count: Int { entries.count }
    var keys: [JinjaValue] { entries.map(\.key) }
    var values: [JinjaValue] { entries.map(\.value) }

    func index(of key: JinjaValue) -> Int? {
        entries.firstIndex(where: { JinjaValue.pyEqual($0.key, key) })
    }

    subscript(key: JinjaValue) -> JinjaValue? {
        index(of: key).map { entries[$0].value }
    }

    subscript(string key: String) -> JinjaValue? {
        entries.first(where: {
            if case .string(let s) = $0.key { return PythonText.equal(s, key) }
            return false
        })?.value
    }

    /// Inserts or replaces (a replaced key keeps its position, as in Python).
    mutating func set(_ key: JinjaValue, _ value: JinjaValue) {
        if let i = index(of: key) {
            entries[i].value = value
        } else {
            entries.append((key, value))
        }
    }
}

indirect enum JinjaValue {
    case undefined(JinjaUndefined)
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case list([JinjaValue])
    case tuple([JinjaValue])
    case dict(JinjaDict)
    case namespace(JinjaNamespace)
    case loop(JinjaLoopState)
    case callable(JinjaCallable)
    case iterator(JinjaIterator)
    case view(JinjaViewKind, [JinjaValue])

    static func undefined(_ message: String) -> JinjaValue { .undefined(JinjaUndefined(message: message)) }

    init(_ constant: JinjaConstant) {
        switch constant {
        case .none: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .float(let f): self = .float(f)
        case .string(let s): self = .string(s)
        }
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// Python's type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .loop: return "LoopContext"
        case .callable(let c):
            if case .method = c { return "builtin_function_or_method" }
            return "function"
        case .iterator(let it): return it.typeName
        case .view(let kind, _):
            switch kind {
            case .dictKeys: return "dict_keys"
            case .dictValues: return "dict_values"
            case .dictItems: return "dict_items"
            case .range: return "range"
            }
        }
    }

    // MARK: - Truth

    /// Python's bool(); jinja2's Undefined is false.
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .float(let f): return f != 0
        case .string(let s): return !s.isEmpty
        case .list(let xs), .tuple(let xs): return !xs.isEmpty
        case .dict(let d): return d.count > 0
        case .view(_, let xs): return !xs.isEmpty
        case .loop(let l): return l.length > 0
        case .namespace, .callable, .iterator: return true
        }
    }

    // MARK: - Numbers

    /// bool, int and float as a number (Python's numeric tower: True == 1).
    enum Number {
        case int(Int)
        case float(Double)
    }

    var number: Number? {
        switch self {
        case .bool(let b): return .int(b ? 1 : 0)
        case .int(let i): return .int(i)
        case .float(let f): return .float(f)
        default: return nil
        }
    }

    /// An int or bool, as Python's __index__ accepts.
    var index: Int? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return i
        default: return nil
        }
    }

    // MARK: - Equality and order

    /// Python's ==.
    static func pyEqual(_ a: JinjaValue, _ b: JinjaValue) -> Bool {
        if let x = a.number, let y = b.number {
            switch (x, y) {
            case (.int(let i), .int(let j)): return i == j
            case (.float(let f), .float(let g)): return f == g
            case (.int(let i), .float(let f)), (.float(let f), .int(let i)):
                // Exact comparison, as Python does (no rounding of large ints).
                guard let exact = Int(exactly: f) else { return false }
                return exact == i
            }
        }
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let x), .string(let y)): return PythonText.equal(x, y)
        case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { pyEqual($0, $1) }
        case (.dict(let x), .dict(let y)):
            guard x.count == y.count else { return false }
            return x.entries.allSatisfy { entry in y[entry.key].map { pyEqual($0, entry.value) } ?? false }
        case (.namespace(let x), .namespace(let y)): return x === y
        case (.iterator(let x), .iterator(let y)): return x === y
        default: return false
        }
    }

    /// Python's <, or nil when Python raises TypeError for these types.
    static func pyLess(_ a: JinjaValue, _ b: JinjaValue) -> Bool? {
        if let x = a.number, let y = b.number {
            switch (x, y) {
            case (.int(let i), .int(let j)): return i < j
            case (.float(let f), .float(let g)): return f < g
            case (.int(let i), .float(let f)): return exactLess(int: i, float: f, intOnLeft: true)
            case (.float(let f), .int(let i)): return exactLess(int: i, float: f, intOnLeft: false)
            }
        }
        switch (a, b) {
        case (.string(let x), .string(let y)): return PythonText.less(x, y)
        case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
            for (p, q) in zip(x, y) where !pyEqual(p, q) { return pyLess(p, q) }
            return x.count < y.count
        default: return nil
        }
    }

    /// i < f (intOnLeft) or f < i, compared exactly as Python does.
    private static func exactLess(int i: Int, float f: Double, intOnLeft: Bool) -> Bool {
        if f.isNaN { return false }
        if f >= 0x1p63 { return intOnLeft }  // above every Int
        if f < -0x1p63 { return !intOnLeft }  // below every Int
        let floorF = f.rounded(.down)
        let fl = Int(floorF)  // fits: -2^63 <= floorF < 2^63
        if intOnLeft { return floorF == f ? i < fl : i <= fl }
        return fl < i
    }

    // MARK: - Hashability (dict keys)

    var isHashable: Bool {
        switch self {
        case .undefined, .none, .bool, .int, .float, .string: return true  // Undefined.__hash__ exists
        case .tuple(let xs): return xs.allSatisfy(\.isHashable)
        case .namespace, .iterator, .callable, .loop: return true
        default: return false
        }
    }
}

// MARK: - str() and repr()

enum JinjaPrintError: Error {
    /// Python would print something lorad cannot reproduce (an object address).
    case unprintable(typeName: String)
}

extension JinjaValue {
    /// Python's str(), with jinja2's Undefined printing as "".
    func pyStr() throws(JinjaPrintError) -> String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return try pyRepr()
        }
    }

    /// Python's repr().
    func pyRepr() throws(JinjaPrintError) -> String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .float(let f): return PythonText.floatRepr(f)
        case .string(let s): return PythonText.repr(s)
        case .list(let xs): return "[" + (try xs.map { v throws(JinjaPrintError) in try v.pyRepr() }).joined(separator: ", ") + "]"
        case .tuple(let xs):
            let inner = try xs.map { v throws(JinjaPrintError) in try v.pyRepr() }
            return "(" + inner.joined(separator: ", ") + (xs.count == 1 ? ",)" : ")")
        case .dict(let d):
            let parts = try d.entries.map { e throws(JinjaPrintError) in try e.key.pyRepr() + ": " + e.value.pyRepr() }
            return "{" + parts.joined(separator: ", ") + "}"
        case .namespace(let ns):
            let parts = try ns.attributes.map { a throws(JinjaPrintError) in try PythonText.repr(a.name) + ": " + a.value.pyRepr() }
            return "<Namespace {" + parts.joined(separator: ", ") + "}>"
        case .loop(let l):
            return "<LoopContext \(l.index0 + 1)/\(l.length)>"
        case .view(let kind, let items):
            let inner = try items.map { v throws(JinjaPrintError) in try v.pyRepr() }.joined(separator: ", ")
            switch kind {
            case .dictKeys: return "dict_keys([\(inner)])"
            case .dictValues: return "dict_values([\(inner)])"
            case .dictItems: return "dict_items([\(inner)])"
            case .range(let start, let stop, let step):
                return step == 1 ? "range(\(start), \(stop))" : "range(\(start), \(stop), \(step))"
            }
        case .callable, .iterator:
            throw .unprintable(typeName: typeName)
        }
    }
}
