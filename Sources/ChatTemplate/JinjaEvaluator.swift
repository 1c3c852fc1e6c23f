// Jinja evaluator: renders a syntax tree with jinja2 3.1's runtime semantics as seen from a
// chat template (ImmutableSandboxedEnvironment, default Undefined, autoescape off).
//
// Scoping follows what jinja2's compiler produces, checked against jinja2 itself by the golden
// cases in Tests/ChatTemplateTests/Fixtures/jinja_cases.json:
// - `{% set %}` at the top level assigns template variables, visible to everything after it;
// - every for-loop iteration gets a fresh scope whose parent is the scope around the loop, so
//   assignments inside a loop body (including the loop variables) never leak out of it and
//   do not carry over to the next iteration; namespace() objects are how templates carry state
//   across iterations;
// - `if` opens no scope.
// Errors raised below carry the location of the innermost expression being evaluated.

#if canImport(Glibc)
import Glibc  // fmod, pow
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An error raised while evaluating, before the location is attached.
struct JinjaFailure: Error {
    enum Kind { case render, unsupported, raised }

    var kind: Kind
    var message: String

    static func render(_ message: String) -> JinjaFailure { JinjaFailure(kind: .render, message: message) }
    static func unsupported(_ construct: String) -> JinjaFailure {
        JinjaFailure(kind: .unsupported, message: construct)
    }

    func located(_ at: TemplateLocation) -> ChatTemplateError {
        switch kind {
        case .render: return .render(message: message, at: at)
        case .unsupported: return .unsupported(construct: message, at: at)
        case .raised: return .raised(message: message, at: at)
        }
    }
}

/// Evaluated call arguments.
struct JinjaCallArguments {
    var positional: [JinjaValue] = []
    var keyword: [(name: String, value: JinjaValue)] = []

    /// Binds to Python-style parameters; the result has one slot per parameter (nil = not
    /// passed). `positionalOnly` models C functions such as str.strip that take no keywords.
    func bind(_ function: String, _ parameters: [String], required: Int = 0,
              positionalOnly: Bool = false) throws -> [JinjaValue?] {
        guard positional.count <= parameters.count else {
            throw JinjaFailure.render("\(function)() takes at most \(parameters.count) argument"
                                      + "\(parameters.count == 1 ? "" : "s") (\(positional.count) given)")
        }
        var slots: [JinjaValue?] = positional.map { $0 } + Array(repeating: nil, count: parameters.count - positional.count)
        for (name, value) in keyword {
            guard !positionalOnly else {
                throw JinjaFailure.render("\(function)() takes no keyword arguments")
            }
            guard let i = parameters.firstIndex(of: name) else {
                throw JinjaFailure.render("\(function)() got an unexpected keyword argument '\(name)'")
            }
            guard slots[i] == nil else {
                throw JinjaFailure.render("\(function)() got multiple values for argument '\(name)'")
            }
            slots[i] = value
        }
        for i in 0..<required where slots[i] == nil {
            throw JinjaFailure.render("\(function)() missing required argument '\(parameters[i])'")
        }
        return slots
    }
}

struct JinjaRenderer {
    enum Flow { case normal, breakLoop, continueLoop }

    /// Innermost scope last. scopes[0] holds the render context and top-level assignments.
    private var scopes: [[String: JinjaValue]]
    /// Seconds since the Unix epoch, for strftime_now().
    let now: Double

    init(context: [String: JinjaValue], now: Double) {
        scopes = [context]
        self.now = now
    }

    // MARK: - Statements

    mutating func render(_ nodes: [JinjaNode], into out: inout String) throws -> Flow {
        for node in nodes {
            switch node {
            case .text(let t):
                out += t
            case .output(let expr):
                let value = try eval(expr)
                out += try printed(value, at: expr.at)
            case .ifChain(let branches, let otherwise):
                var taken = false
                for branch in branches where try eval(branch.test).truthy {
                    taken = true
                    let flow = try render(branch.body, into: &out)
                    if flow != .normal { return flow }
                    break
                }
                if !taken {
                    let flow = try render(otherwise, into: &out)
                    if flow != .normal { return flow }
                }
            case .forLoop(let loop):
                try renderFor(loop, into: &out)
            case .set(let target, let expr, let at):
                try assign(target, try eval(expr), at: at)
            case .setBlock(let target, let filter, let body, let at):
                var captured = ""
                scopes.append([:])
                let flow = try render(body, into: &captured)
                scopes.removeLast()
                if flow != .normal { return flow }
                var value = JinjaValue.string(captured)
                if let filter { value = try applyFilterChain(filter, to: value) }
                try assign(target, value, at: at)
            case .loopControl(let isBreak, _):
                return isBreak ? .breakLoop : .continueLoop
            case .generation(let body):
                scopes.append([:])
                let flow = try render(body, into: &out)
                scopes.removeLast()
                if flow != .normal { return flow }
            }
        }
        return .normal
    }

    func printed(_ value: JinjaValue, at: TemplateLocation) throws -> String {
        do {
            return try value.pyStr()
        } catch {
            throw ChatTemplateError.render(
                message: "cannot print a \(value.typeName) object: Python would print its memory address "
                    + "(convert it first, e.g. with '| list')", at: at)
        }
    }

    private mutating func renderFor(_ loop: JinjaForLoop, into out: inout String) throws {
        let iterable = try eval(loop.iterable)
        var items: [JinjaValue]
        do {
            items = try JinjaRenderer.iterate(iterable)
        } catch let f as JinjaFailure {
            throw f.located(loop.iterable.at)
        }
        if let condition = loop.condition {
            var kept: [JinjaValue] = []
            for item in items {
                scopes.append([:])
                try assign(loop.target, item, at: loop.at)
                let keep = try eval(condition).truthy
                scopes.removeLast()
                if keep { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try render(loop.otherwise, into: &out)
            return
        }
        for (i, item) in items.enumerated() {
            scopes.append(["loop": .loop(JinjaLoopState(index0: i, items: items))])
            try assign(loop.target, item, at: loop.at)
            let flow = try render(loop.body, into: &out)
            scopes.removeLast()
            if flow == .breakLoop { break }
        }
    }

    private mutating func assign(_ target: JinjaTarget, _ value: JinjaValue, at: TemplateLocation) throws {
        switch target {
        case .name(let name):
            scopes[scopes.count - 1][name] = value
        case .tuple(let targets):
            let items: [JinjaValue]
            do {
                items = try JinjaRenderer.iterate(value)
            } catch let f as JinjaFailure {
                throw ChatTemplateError.render(message: "cannot unpack a non-iterable \(value.typeName) object "
                                               + "(\(f.message))", at: at)
            }
            guard items.count == targets.count else {
                let problem = items.count < targets.count
                    ? "not enough values to unpack (expected \(targets.count), got \(items.count))"
                    : "too many values to unpack (expected \(targets.count))"
                throw ChatTemplateError.render(message: problem, at: at)
            }
            for (t, v) in zip(targets, items) { try assign(t, v, at: at) }
        case .namespaceAttribute(let name, let attribute):
            guard case .namespace(let ns) = lookup(name) else {
                throw ChatTemplateError.render(
                    message: "cannot assign attribute on non-namespace object '\(name)' "
                        + "(create it with {% set \(name) = namespace() %})", at: at)
            }
            ns[attribute] = value
        }
    }

    // MARK: - Names

    static let globalFunctions: Set<String> = ["raise_exception", "range", "namespace", "dict", "strftime_now"]
    /// jinja2 globals lorad does not provide.
    static let unsupportedGlobals: Set<String> = ["lipsum", "cycler", "joiner"]

    func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() {
            if let v = scope[name] { return v }
        }
        if JinjaRenderer.globalFunctions.contains(name) { return .callable(.global(name)) }
        return .undefined("'\(name)' is undefined")
    }

    // MARK: - Expressions

    func eval(_ expr: JinjaExpr) throws -> JinjaValue {
        do {
            return try evalUnlocated(expr)
        } catch let f as JinjaFailure {
            throw f.located(expr.at)
        }
    }

    private func evalUnlocated(_ expr: JinjaExpr) throws -> JinjaValue {
        switch expr.kind {
        case .constant(let c):
            return JinjaValue(c)
        case .name(let name):
            if JinjaRenderer.unsupportedGlobals.contains(name), lookup(name).isUndefined {
                throw JinjaFailure.unsupported("the global '\(name)'")
            }
            return lookup(name)
        case .list(let items):
            return .list(try items.map { try eval($0) })
        case .tuple(let items):
            return .tuple(try items.map { try eval($0) })
        case .dict(let pairs):
            var d = JinjaDict()
            for pair in pairs {
                let key = try eval(pair.key)
                guard key.isHashable else {
                    throw ChatTemplateError.render(message: "unhashable type: '\(key.typeName)' as a dict key",
                                                   at: pair.key.at)
                }
                d.set(key, try eval(pair.value))
            }
            return .dict(d)
        case .attribute(let base, let name):
            return try getAttribute(try eval(base), name)
        case .item(let base, let index):
            let container = try eval(base)
            if case .slice(let start, let stop, let step) = index.kind {
                return try slice(container, start: try start.map { try eval($0) }, stop: try stop.map { try eval($0) },
                                 step: try step.map { try eval($0) })
            }
            return try getItem(container, try eval(index))
        case .slice:
            throw JinjaFailure.render("a slice is only valid inside brackets")
        case .call(let callee, let arguments):
            let function = try eval(callee)
            return try call(function, try evalArguments(arguments))
        case .filter(let base, let name, let arguments):
            guard let base else { throw JinjaFailure.render("filter '\(name)' has no value") }
            return try applyFilter(name, try eval(base), try evalArguments(arguments))
        case .test(let base, let name, let arguments):
            return .bool(try applyTest(name, try eval(base), try evalArguments(arguments)))
        case .not(let inner):
            return .bool(!(try eval(inner).truthy))
        case .negate(let inner):
            return try JinjaRenderer.negate(try eval(inner))
        case .unaryPlus(let inner):
            let v = try eval(inner)
            if case .undefined(let u) = v { throw JinjaFailure.render(u.message) }
            guard let n = v.number else { throw JinjaFailure.render("bad operand type for unary +: '\(v.typeName)'") }
            switch n {
            case .int(let i): return .int(i)
            case .float(let f): return .float(f)
            }
        case .binary(let op, let lhs, let rhs):
            return try JinjaRenderer.binary(op, try eval(lhs), try eval(rhs))
        case .concat(let items):
            var s = ""
            for item in items { s += try printed(try eval(item), at: item.at) }
            return .string(s)
        case .compare(let first, let rest):
            var left = try eval(first)
            for (op, operandExpr) in rest {
                let right = try eval(operandExpr)
                guard try JinjaRenderer.compare(op, left, right) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .and(let lhs, let rhs):
            let l = try eval(lhs)
            return l.truthy ? try eval(rhs) : l
        case .or(let lhs, let rhs):
            let l = try eval(lhs)
            return l.truthy ? l : try eval(rhs)
        case .conditional(let test, let then, let otherwise):
            if try eval(test).truthy { return try eval(then) }
            if let otherwise { return try eval(otherwise) }
            return .undefined("the inline if-expression on line \(expr.at.line) evaluated to false and "
                              + "no else section was defined")
        }
    }

    func evalArguments(_ arguments: JinjaArguments) throws -> JinjaCallArguments {
        JinjaCallArguments(positional: try arguments.positional.map { try eval($0) },
                           keyword: try arguments.keyword.map { ($0.name, try eval($0.value)) })
    }

    /// `{% set x | f | g %}`: the filter chain was parsed with an empty base.
    private func applyFilterChain(_ chain: JinjaExpr, to value: JinjaValue) throws -> JinjaValue {
        guard case .filter(let base, let name, let arguments) = chain.kind else { return value }
        let input = try base.map { try applyFilterChain($0, to: value) } ?? value
        do {
            return try applyFilter(name, input, try evalArguments(arguments))
        } catch let f as JinjaFailure {
            throw f.located(chain.at)
        }
    }

    // MARK: - Operators

    static func negate(_ v: JinjaValue) throws -> JinjaValue {
        if case .undefined(let u) = v { throw JinjaFailure.render(u.message) }
        guard let n = v.number else { throw JinjaFailure.render("bad operand type for unary -: '\(v.typeName)'") }
        switch n {
        case .int(let i):
            guard i != Int.min else { throw overflow }
            return .int(-i)
        case .float(let f): return .float(-f)
        }
    }

    /// Python integers are unbounded; lorad's are 64-bit, so a result beyond that is outside the subset.
    static let overflow = JinjaFailure.unsupported("integers beyond 64 bits (this result overflows; Python "
                                                   + "would switch to a big integer)")

    static func binary(_ op: JinjaBinaryOperator, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        if op == .modulo, case .string = a {
            throw JinjaFailure.unsupported("printf-style '%' formatting of strings")
        }
        if case .undefined(let u) = a { throw JinjaFailure.render(u.message) }
        if case .undefined(let u) = b { throw JinjaFailure.render(u.message) }
        let unsupported = JinjaFailure.render("unsupported operand type(s) for \(op.rawValue): "
                                              + "'\(a.typeName)' and '\(b.typeName)'")
        if let x = a.number, let y = b.number {
            return try arithmetic(op, x, y)
        }
        switch (op, a, b) {
        case (.add, .string(let x), .string(let y)): return .string(x + y)
        case (.add, .list(let x), .list(let y)): return .list(x + y)
        case (.add, .tuple(let x), .tuple(let y)): return .tuple(x + y)
        case (.multiply, .string(let s), _) where b.index != nil: return .string(try repeated(s, b.index!))
        case (.multiply, _, .string(let s)) where a.index != nil: return .string(try repeated(s, a.index!))
        case (.multiply, .list(let xs), _) where b.index != nil: return .list(try repeated(xs, b.index!))
        case (.multiply, _, .list(let xs)) where a.index != nil: return .list(try repeated(xs, a.index!))
        case (.multiply, .tuple(let xs), _) where b.index != nil: return .tuple(try repeated(xs, b.index!))
        case (.multiply, _, .tuple(let xs)) where a.index != nil: return .tuple(try repeated(xs, a.index!))
        default:
            throw unsupported
        }
    }

    /// Repetition results beyond this many elements fail instead of exhausting memory (Python
    /// would raise MemoryError, or take the machine down trying).
    static let maxRepetition = 1 << 26

    private static func checkRepetition(_ count: Int, _ n: Int) throws {
        let (total, overflow) = count.multipliedReportingOverflow(by: n)
        if overflow || total > maxRepetition {
            throw JinjaFailure.render("repetition result too large (\(count) × \(n) elements)")
        }
    }

    private static func repeated(_ s: String, _ n: Int) throws -> String {
        guard n > 0 else { return "" }
        try checkRepetition(s.utf8.count, n)
        return String(repeating: s, count: n)
    }

    private static func repeated(_ xs: [JinjaValue], _ n: Int) throws -> [JinjaValue] {
        guard n > 0 else { return [] }
        try checkRepetition(xs.count, n)
        var out: [JinjaValue] = []
        for _ in 0..<n { out += xs }
        return out
    }

    private static func arithmetic(_ op: JinjaBinaryOperator, _ x: JinjaValue.Number,
                                   _ y: JinjaValue.Number) throws -> JinjaValue {
        switch (x, y) {
        case (.int(let i), .int(let j)):
            switch op {
            case .add:
                let (r, o) = i.addingReportingOverflow(j)
                if o { throw overflow }
                return .int(r)
            case .subtract:
                let (r, o) = i.subtractingReportingOverflow(j)
                if o { throw overflow }
                return .int(r)
            case .multiply:
                let (r, o) = i.multipliedReportingOverflow(by: j)
                if o { throw overflow }
                return .int(r)
            case .divide:
                guard j != 0 else { throw JinjaFailure.render("division by zero") }
                return .float(Double(i) / Double(j))
            case .floorDivide, .modulo:
                guard j != 0 else { throw JinjaFailure.render("integer division or modulo by zero") }
                guard !(i == Int.min && j == -1) else { throw overflow }
                var q = i / j
                var r = i % j
                if r != 0 && ((r < 0) != (j < 0)) {
                    q -= 1
                    r += j
                }
                return .int(op == .modulo ? r : q)
            case .power:
                if j < 0 {
                    guard i != 0 else { throw JinjaFailure.render("0.0 cannot be raised to a negative power") }
                    return .float(pow(Double(i), Double(j)))
                }
                var result = 1
                var base = i
                var e = j
                while e > 0 {
                    if e & 1 == 1 {
                        let (r, o) = result.multipliedReportingOverflow(by: base)
                        if o { throw overflow }
                        result = r
                    }
                    e >>= 1
                    if e > 0 {
                        let (sq, o) = base.multipliedReportingOverflow(by: base)
                        if o { throw overflow }
                        base = sq
                    }
                }
                return .int(result)
            }
        default:
            let f = x.double, g = y.double
            switch op {
            case .add: return .float(f + g)
            case .subtract: return .float(f - g)
            case .multiply: return .float(f * g)
            case .divide:
                guard g != 0 else { throw JinjaFailure.render("float division by zero") }
                return .float(f / g)
            case .floorDivide, .modulo:
                guard g != 0 else { throw JinjaFailure.render("float floor division by zero") }
                let (div, mod) = pythonFloatDivmod(f, g)
                return .float(op == .modulo ? mod : div)
            case .power:
                if f == 0 && g < 0 { throw JinjaFailure.render("0.0 cannot be raised to a negative power") }
                if f < 0 && g != g.rounded() {
                    throw JinjaFailure.unsupported("a negative number raised to a fractional power (a complex number)")
                }
                let r = pow(f, g)
                if r.isInfinite && f.isFinite && g.isFinite {
                    throw JinjaFailure.render("numerical result out of range")
                }
                return .float(r)
            }
        }
    }

    /// CPython's float_divmod (Objects/floatobject.c).
    private static func pythonFloatDivmod(_ vx: Double, _ wx: Double) -> (Double, Double) {
        var mod = fmod(vx, wx)
        var div = (vx - mod) / wx
        if mod != 0 {
            if (wx < 0) != (mod < 0) {
                mod += wx
                div -= 1
            }
        } else {
            mod = Double(signOf: wx, magnitudeOf: 0)
        }
        var floordiv: Double
        if div != 0 {
            floordiv = div.rounded(.down)
            if div - floordiv > 0.5 { floordiv += 1 }
        } else {
            floordiv = Double(signOf: vx / wx, magnitudeOf: 0)
        }
        return (floordiv, mod)
    }

    static func compare(_ op: JinjaCompareOperator, _ a: JinjaValue, _ b: JinjaValue) throws -> Bool {
        switch op {
        case .equal: return JinjaValue.pyEqual(a, b)
        case .notEqual: return !JinjaValue.pyEqual(a, b)
        case .isIn: return try contains(b, a)
        case .notIn: return !(try contains(b, a))
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            if case .undefined(let u) = a { throw JinjaFailure.render(u.message) }
            if case .undefined(let u) = b { throw JinjaFailure.render(u.message) }
            let (l, r) = (op == .less || op == .lessOrEqual) ? (a, b) : (b, a)
            guard let less = JinjaValue.pyLess(l, r) else {
                throw JinjaFailure.render("'\(op.rawValue)' not supported between instances of "
                                          + "'\(a.typeName)' and '\(b.typeName)'")
            }
            if op == .less || op == .greater { return less }
            return less || JinjaValue.pyEqual(l, r)
        }
    }

    /// Python's `item in container`.
    static func contains(_ container: JinjaValue, _ item: JinjaValue) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let sub) = item else {
                throw JinjaFailure.render("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return PythonText.contains(s, sub)
        case .dict(let d):
            guard item.isHashable else { throw JinjaFailure.render("unhashable type: '\(item.typeName)'") }
            return d.index(of: item) != nil
        case .undefined:
            return false
        case .iterator(let it):
            while let x = it.next() {
                if JinjaValue.pyEqual(x, item) { return true }
            }
            return false
        default:
            let items = try iterate(container)
            return items.contains { JinjaValue.pyEqual($0, item) }
        }
    }

    // MARK: - Iteration

    /// The items a Python for loop over `value` yields. Iterators are consumed.
    static func iterate(_ value: JinjaValue) throws -> [JinjaValue] {
        switch value {
        case .undefined: return []
        case .list(let xs), .tuple(let xs): return xs
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .dict(let d): return d.keys
        case .view(_, let xs): return xs
        case .iterator(let it): return it.drain()
        case .loop:
            throw JinjaFailure.unsupported("iterating over the 'loop' object")
        default:
            throw JinjaFailure.render("'\(value.typeName)' object is not iterable")
        }
    }
}

extension JinjaValue.Number {
    var double: Double {
        switch self {
        case .int(let i): return Double(i)
        case .float(let f): return f
        }
    }
}
