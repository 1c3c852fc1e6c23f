// Jinja parser: tokens -> syntax tree. A port of jinja2 3.1's parser.py grammar, so operator
// precedence and the odd corners match exactly, for example:
// - filters and tests bind tighter than any operator: `a + b | trim` is `a + (b | trim)`,
//   `not x is defined` is `not (x is defined)`;
// - `-x | f` applies f to `-x`; `~` binds looser than `*` and tighter than `+`;
// - comparisons chain as in Python; `{{ a, b }}` is a tuple;
// - a test takes one bare argument: `x is divisibleby 3`.
// Statements outside the subset (macro, call, include, extends, ...) fail here with
// ChatTemplateError.unsupported, before anything is rendered.

struct JinjaParser {
    private let tokens: [JinjaToken]
    private var index = 0
    /// The end tags of the statements being parsed, innermost last (for error messages).
    private var endTagStack: [[String]] = []
    private var loopDepth = 0
    private var nesting = 0
    /// Deep enough for any real template, shallow enough to stay far from the stack limit.
    private static let maxNesting = 200

    static func parse(_ source: String) throws -> [JinjaNode] {
        var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source))
        let body = try parser.subparse(endTags: nil)
        return body
    }

    private init(tokens: [JinjaToken]) {
        self.tokens = tokens
    }

    // MARK: - Token stream

    private var current: JinjaToken { tokens[index] }
    private var peek: JinjaToken { tokens[min(index + 1, tokens.count - 1)] }

    private mutating func advance() -> JinjaToken {
        let t = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return t
    }

    private func isName(_ name: String, _ token: JinjaToken? = nil) -> Bool {
        if case .name(let n) = (token ?? current).kind { return n == name }
        return false
    }

    private func isOp(_ op: String, _ token: JinjaToken? = nil) -> Bool {
        if case .op(let o) = (token ?? current).kind { return o == op }
        return false
    }

    private mutating func skipName(_ name: String) -> Bool {
        if isName(name) { _ = advance(); return true }
        return false
    }

    private mutating func skipOp(_ op: String) -> Bool {
        if isOp(op) { _ = advance(); return true }
        return false
    }

    private func describe(_ token: JinjaToken) -> String {
        switch token.kind {
        case .data: return "template text"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case .name(let n): return "'\(n)'"
        case .string: return "a string"
        case .integer(let i): return "'\(i)'"
        case .float(let f): return "'\(f)'"
        case .op(let o): return "'\(o)'"
        case .eof: return "the end of the template"
        }
    }

    private func fail(_ message: String, _ token: JinjaToken? = nil) -> ChatTemplateError {
        .syntax(message: message, at: (token ?? current).at)
    }

    private mutating func expectOp(_ op: String) throws {
        guard skipOp(op) else { throw fail("expected '\(op)', found \(describe(current))") }
    }

    private mutating func expectName(_ name: String) throws {
        guard skipName(name) else { throw fail("expected '\(name)', found \(describe(current))") }
    }

    private mutating func expectIdentifier() throws -> String {
        if case .name(let n) = current.kind {
            _ = advance()
            return n
        }
        throw fail("expected a name, found \(describe(current))")
    }

    private mutating func expectBlockEnd() throws {
        guard case .blockEnd = current.kind else {
            throw fail("expected '%}' to end the tag, found \(describe(current))")
        }
        _ = advance()
    }

    private mutating func enter() throws {
        nesting += 1
        if nesting > JinjaParser.maxNesting {
            throw fail("template nested more than \(JinjaParser.maxNesting) levels deep")
        }
    }

    // MARK: - Statements

    /// Template data, `{{ }}` and statements until one of `endTags` opens a block (which is left
    /// as the current token) or the template ends.
    private mutating func subparse(endTags: [String]?) throws -> [JinjaNode] {
        var body: [JinjaNode] = []
        if let endTags { endTagStack.append(endTags) }
        defer { if endTags != nil { endTagStack.removeLast() } }
        while true {
            let token = current
            switch token.kind {
            case .data(let text):
                body.append(.text(text))
                _ = advance()
            case .variableBegin:
                _ = advance()
                body.append(.output(try parseTuple()))
                guard case .variableEnd = current.kind else {
                    throw fail("expected '}}' to end the expression, found \(describe(current))")
                }
                _ = advance()
            case .blockBegin:
                _ = advance()
                if let endTags, case .name(let n) = current.kind, endTags.contains(n) {
                    return body
                }
                body.append(contentsOf: try parseStatement())
                try expectBlockEnd()
            case .eof:
                if let endTags {
                    throw fail("unexpected end of template: Jinja was looking for "
                               + endTags.map { "'\($0)'" }.joined(separator: " or "))
                }
                return body
            default:
                throw fail("internal parsing error at \(describe(token))")
            }
        }
    }

    /// The body of a statement: `%}` then nodes up to one of `endTags`, whose name token becomes
    /// current (or is consumed when `dropNeedle`).
    private mutating func parseStatements(endTags: [String], dropNeedle: Bool = false) throws -> [JinjaNode] {
        _ = skipOp(":")
        try expectBlockEnd()
        let body = try subparse(endTags: endTags)
        if dropNeedle { _ = advance() }
        return body
    }

    private static let unsupportedTags: Set<String> = [
        "block", "extends", "macro", "include", "from", "import", "with", "autoescape", "call",
        "filter", "do", "trans", "pluralize", "endtrans",
    ]

    private mutating func parseStatement() throws -> [JinjaNode] {
        let token = current
        guard case .name(let tag) = token.kind else { throw fail("tag name expected, found \(describe(token))") }
        try enter()
        defer { nesting -= 1 }
        switch tag {
        case "if": return [try parseIf()]
        case "for": return [try parseFor()]
        case "set": return [try parseSet()]
        case "print":
            _ = advance()
            var nodes: [JinjaNode] = []
            while true {
                if case .blockEnd = current.kind { break }
                if !nodes.isEmpty { try expectOp(",") }
                nodes.append(.output(try parseExpression()))
            }
            return nodes
        case "break", "continue":
            _ = advance()
            guard loopDepth > 0 else { throw fail("'{% \(tag) %}' outside a for loop", token) }
            return [.loopControl(isBreak: tag == "break", at: token.at)]
        case "generation":
            _ = advance()
            return [.generation(try parseStatements(endTags: ["endgeneration"], dropNeedle: true))]
        default:
            if JinjaParser.unsupportedTags.contains(tag) {
                throw ChatTemplateError.unsupported(construct: "the '{% \(tag) %}' tag", at: token.at)
            }
            var message = "encountered unknown tag '\(tag)'."
            if let looking = endTagStack.last {
                let expected = endTagStack.joined()
                if expected.contains(tag) {
                    message += " You probably made a nesting mistake: Jinja is expecting this tag, but is "
                        + "currently looking for " + looking.map { "'\($0)'" }.joined(separator: " or ") + "."
                } else {
                    message += " Jinja was looking for the following tags: "
                        + looking.map { "'\($0)'" }.joined(separator: " or ") + "."
                }
            }
            throw fail(message, token)
        }
    }

    private mutating func parseIf() throws -> JinjaNode {
        _ = advance()  // "if"
        var branches: [(test: JinjaExpr, body: [JinjaNode])] = []
        var otherwise: [JinjaNode] = []
        while true {
            let test = try parseTuple(withConditional: false)
            let body = try parseStatements(endTags: ["elif", "else", "endif"])
            branches.append((test, body))
            let tag = advance()
            if isName("elif", tag) { continue }
            if isName("else", tag) {
                otherwise = try parseStatements(endTags: ["endif"], dropNeedle: true)
            }
            break
        }
        return .ifChain(branches: branches, otherwise: otherwise)
    }

    private mutating func parseFor() throws -> JinjaNode {
        let start = advance()  // "for"
        let target = try parseAssignTarget(extraEndNames: ["in"], withNamespace: false)
        if target.names.contains("loop") {
            throw fail("can't assign to special loop variable in for-loop target", start)
        }
        try expectName("in")
        let iterable = try parseTuple(withConditional: false, extraEndNames: ["recursive"])
        var condition: JinjaExpr? = nil
        if skipName("if") { condition = try parseExpression() }
        if isName("recursive") {
            throw ChatTemplateError.unsupported(construct: "recursive for loops", at: current.at)
        }
        loopDepth += 1
        let body = try parseStatements(endTags: ["endfor", "else"])
        loopDepth -= 1
        var otherwise: [JinjaNode] = []
        if isName("else", advance()) {
            otherwise = try parseStatements(endTags: ["endfor"], dropNeedle: true)
        }
        return .forLoop(JinjaForLoop(target: target, iterable: iterable, condition: condition, body: body,
                                     otherwise: otherwise, at: start.at))
    }

    private mutating func parseSet() throws -> JinjaNode {
        let start = advance()  // "set"
        let target = try parseAssignTarget(extraEndNames: [], withNamespace: true)
        if skipOp("=") {
            return .set(target, try parseTuple(), at: start.at)
        }
        var filter: JinjaExpr? = nil
        if isOp("|") { filter = try parseFilter(nil) }
        let body = try parseStatements(endTags: ["endset"], dropNeedle: true)
        return .setBlock(target, filter: filter, body: body, at: start.at)
    }

    private mutating func parseAssignTarget(extraEndNames: [String], withNamespace: Bool) throws -> JinjaTarget {
        let start = current
        var items: [JinjaTarget] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEndNames) { break }
            items.append(try parseTargetPrimary(withNamespace: withNamespace))
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            guard let only = items.first else {
                throw fail("expected an assignment target, found \(describe(current))", start)
            }
            return only
        }
        return .tuple(items)
    }

    private mutating func parseTargetPrimary(withNamespace: Bool) throws -> JinjaTarget {
        let token = current
        guard case .name(let name) = token.kind else {
            if isOp("(") {
                _ = advance()
                let inner = try parseAssignTarget(extraEndNames: [], withNamespace: withNamespace)
                try expectOp(")")
                return inner
            }
            throw fail("can't assign to \(describe(token))", token)
        }
        _ = advance()
        if ["true", "false", "none", "True", "False", "None"].contains(name) {
            throw fail("can't assign to constant '\(name)'", token)
        }
        if withNamespace && isOp(".") {
            _ = advance()
            return .namespaceAttribute(namespace: name, attribute: try expectIdentifier())
        }
        return .name(name)
    }

    private func isTupleEnd(_ extraEndNames: [String]) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd: return true
        case .op(")"): return true
        case .name(let n): return extraEndNames.contains(n)
        default: return false
        }
    }

    // MARK: - Expressions

    /// jinja2's parse_tuple: an expression, or a tuple when commas separate several.
    private mutating func parseTuple(withConditional: Bool = true, extraEndNames: [String] = [],
                                     explicitParentheses: Bool = false) throws -> JinjaExpr {
        let start = current
        var items: [JinjaExpr] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEndNames) { break }
            items.append(withConditional ? try parseExpression() : try parseOr())
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let only = items.first { return only }
            if !explicitParentheses {
                throw fail("expected an expression, found \(describe(current))")
            }
        }
        return JinjaExpr(kind: .tuple(items), at: start.at)
    }

    private mutating func parseExpression() throws -> JinjaExpr {
        try enter()
        defer { nesting -= 1 }
        var expr = try parseOr()
        while skipName("if") {
            let test = try parseOr()
            var otherwise: JinjaExpr? = nil
            if skipName("else") { otherwise = try parseExpression() }
            expr = JinjaExpr(kind: .conditional(test: test, then: expr, otherwise: otherwise), at: expr.at)
        }
        return expr
    }

    private mutating func parseOr() throws -> JinjaExpr {
        var left = try parseAnd()
        while skipName("or") {
            let right = try parseAnd()
            left = JinjaExpr(kind: .or(left, right), at: left.at)
        }
        return left
    }

    private mutating func parseAnd() throws -> JinjaExpr {
        var left = try parseNot()
        while skipName("and") {
            let right = try parseNot()
            left = JinjaExpr(kind: .and(left, right), at: left.at)
        }
        return left
    }

    private mutating func parseNot() throws -> JinjaExpr {
        if isName("not") {
            let token = advance()
            try enter()
            defer { nesting -= 1 }
            return JinjaExpr(kind: .not(try parseNot()), at: token.at)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> JinjaExpr {
        let first = try parseMath1()
        var ops: [(op: JinjaCompareOperator, operand: JinjaExpr)] = []
        while true {
            if case .op(let o) = current.kind, let op = JinjaCompareOperator(rawValue: o),
               op != .isIn, op != .notIn {
                _ = advance()
                ops.append((op, try parseMath1()))
            } else if skipName("in") {
                ops.append((.isIn, try parseMath1()))
            } else if isName("not") && isName("in", peek) {
                _ = advance()
                _ = advance()
                ops.append((.notIn, try parseMath1()))
            } else {
                break
            }
        }
        if ops.isEmpty { return first }
        return JinjaExpr(kind: .compare(first, ops), at: first.at)
    }

    private mutating func parseMath1() throws -> JinjaExpr {
        var left = try parseConcat()
        while isOp("+") || isOp("-") {
            let op: JinjaBinaryOperator = isOp("+") ? .add : .subtract
            _ = advance()
            let right = try parseConcat()
            left = JinjaExpr(kind: .binary(op, left, right), at: left.at)
        }
        return left
    }

    private mutating func parseConcat() throws -> JinjaExpr {
        let first = try parseMath2()
        var items = [first]
        while skipOp("~") { items.append(try parseMath2()) }
        if items.count == 1 { return first }
        return JinjaExpr(kind: .concat(items), at: first.at)
    }

    private mutating func parseMath2() throws -> JinjaExpr {
        var left = try parsePow()
        while true {
            let op: JinjaBinaryOperator
            if isOp("*") { op = .multiply } else if isOp("/") { op = .divide }
            else if isOp("//") { op = .floorDivide } else if isOp("%") { op = .modulo } else { break }
            _ = advance()
            let right = try parsePow()
            left = JinjaExpr(kind: .binary(op, left, right), at: left.at)
        }
        return left
    }

    private mutating func parsePow() throws -> JinjaExpr {
        var left = try parseUnary()
        while skipOp("**") {
            let right = try parseUnary()
            left = JinjaExpr(kind: .binary(.power, left, right), at: left.at)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool = true) throws -> JinjaExpr {
        try enter()
        defer { nesting -= 1 }
        let token = current
        var node: JinjaExpr
        if isOp("-") {
            _ = advance()
            node = JinjaExpr(kind: .negate(try parseUnary(withFilter: false)), at: token.at)
        } else if isOp("+") {
            _ = advance()
            node = JinjaExpr(kind: .unaryPlus(try parseUnary(withFilter: false)), at: token.at)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary() throws -> JinjaExpr {
        let token = current
        switch token.kind {
        case .name(let n):
            _ = advance()
            switch n {
            case "true", "True": return JinjaExpr(kind: .constant(.bool(true)), at: token.at)
            case "false", "False": return JinjaExpr(kind: .constant(.bool(false)), at: token.at)
            case "none", "None": return JinjaExpr(kind: .constant(.none), at: token.at)
            default: return JinjaExpr(kind: .name(n), at: token.at)
            }
        case .string(var s):
            _ = advance()
            // Adjacent literals concatenate, as in Python.
            while case .string(let more) = current.kind {
                s += more
                _ = advance()
            }
            return JinjaExpr(kind: .constant(.string(s)), at: token.at)
        case .integer(let i):
            _ = advance()
            return JinjaExpr(kind: .constant(.int(i)), at: token.at)
        case .float(let f):
            _ = advance()
            return JinjaExpr(kind: .constant(.float(f)), at: token.at)
        case .op("("):
            _ = advance()
            let inner = try parseTuple(explicitParentheses: true)
            try expectOp(")")
            return inner
        case .op("["):
            _ = advance()
            var items: [JinjaExpr] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return JinjaExpr(kind: .list(items), at: token.at)
        case .op("{"):
            _ = advance()
            var items: [(key: JinjaExpr, value: JinjaExpr)] = []
            while !isOp("}") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                items.append((key, try parseExpression()))
            }
            try expectOp("}")
            return JinjaExpr(kind: .dict(items), at: token.at)
        default:
            throw fail("unexpected \(describe(token))")
        }
    }

    private mutating func parsePostfix(_ base: JinjaExpr) throws -> JinjaExpr {
        var node = base
        while true {
            if isOp(".") || isOp("[") {
                node = try parseSubscript(node)
            } else if isOp("(") {
                node = try parseCall(node)
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterExpression(_ base: JinjaExpr) throws -> JinjaExpr {
        var node = base
        while true {
            if isOp("|") {
                node = try parseFilter(node)
            } else if isName("is") {
                node = try parseTest(node)
            } else if isOp("(") {
                node = try parseCall(node)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ base: JinjaExpr) throws -> JinjaExpr {
        let token = advance()
        if isOp(".", token) {
            let attr = current
            _ = advance()
            switch attr.kind {
            case .name(let n): return JinjaExpr(kind: .attribute(base, n), at: base.at)
            case .integer(let i):
                return JinjaExpr(kind: .item(base, JinjaExpr(kind: .constant(.int(i)), at: attr.at)), at: base.at)
            default: throw fail("expected name or number after '.', found \(describe(attr))", attr)
            }
        }
        var args: [JinjaExpr] = []
        while !isOp("]") {
            if !args.isEmpty { try expectOp(",") }
            args.append(try parseSubscribed())
        }
        try expectOp("]")
        let index = args.count == 1 ? args[0] : JinjaExpr(kind: .tuple(args), at: token.at)
        return JinjaExpr(kind: .item(base, index), at: base.at)
    }

    private mutating func parseSubscribed() throws -> JinjaExpr {
        let first = current
        var lower: JinjaExpr? = nil
        if isOp(":") {
            _ = advance()
        } else {
            let node = try parseExpression()
            if !isOp(":") { return node }
            _ = advance()
            lower = node
        }
        var stop: JinjaExpr? = nil
        if !isOp(":") && !isOp("]") && !isOp(",") { stop = try parseExpression() }
        var step: JinjaExpr? = nil
        if skipOp(":") {
            if !isOp("]") && !isOp(",") { step = try parseExpression() }
        }
        return JinjaExpr(kind: .slice(start: lower, stop: stop, step: step), at: first.at)
    }

    private mutating func parseCallArguments() throws -> JinjaArguments {
        let open = current
        try expectOp("(")
        var args = JinjaArguments()
        var requireComma = false
        while !isOp(")") {
            if requireComma {
                try expectOp(",")
                if isOp(")") { break }  // trailing comma
            }
            if isOp("*") || isOp("**") {
                throw ChatTemplateError.unsupported(construct: "'*args' / '**kwargs' in a call", at: current.at)
            }
            if case .name(let key) = current.kind, isOp("=", peek) {
                _ = advance()
                _ = advance()
                args.keyword.append((key, try parseExpression()))
            } else {
                guard args.keyword.isEmpty else {
                    throw fail("invalid syntax for function call expression: positional argument after "
                               + "keyword argument", open)
                }
                args.positional.append(try parseExpression())
            }
            requireComma = true
        }
        try expectOp(")")
        return args
    }

    /// Postfix nodes are located where their whole expression starts, so an error in
    /// `raise_exception(...)` or `message.content.strip()` points at its beginning.
    private mutating func parseCall(_ callee: JinjaExpr) throws -> JinjaExpr {
        JinjaExpr(kind: .call(callee, try parseCallArguments()), at: callee.at)
    }

    private mutating func parseDottedName() throws -> String {
        var name = try expectIdentifier()
        while skipOp(".") { name += "." + (try expectIdentifier()) }
        return name
    }

    private mutating func parseFilter(_ base: JinjaExpr?) throws -> JinjaExpr {
        var node = base
        while skipOp("|") {
            let token = current
            let name = try parseDottedName()
            try JinjaFilters.checkFilterName(name, at: token.at)
            let args = isOp("(") ? try parseCallArguments() : JinjaArguments()
            node = JinjaExpr(kind: .filter(node, name: name, args), at: token.at)
        }
        return node!  // the loop runs at least once: callers check for "|"
    }

    private mutating func parseTest(_ base: JinjaExpr) throws -> JinjaExpr {
        let isToken = advance()
        let negated = skipName("not")
        let nameToken = current
        let name = try parseDottedName()
        try JinjaFilters.checkTestName(name, at: nameToken.at)
        var args = JinjaArguments()
        if isOp("(") {
            args = try parseCallArguments()
        } else {
            var takesBareArgument = false
            switch current.kind {
            case .name(let n): takesBareArgument = !["else", "or", "and"].contains(n)
            case .string, .integer, .float, .op("["), .op("{"): takesBareArgument = true
            default: break
            }
            if takesBareArgument {
                if isName("is") { throw fail("you cannot chain multiple tests with 'is'") }
                args.positional = [try parsePostfix(try parsePrimary())]
            }
        }
        let test = JinjaExpr(kind: .test(base, name: name, args), at: isToken.at)
        return negated ? JinjaExpr(kind: .not(test), at: isToken.at) : test
    }
}

extension JinjaTarget {
    /// Every plain name the target binds.
    var names: [String] {
        switch self {
        case .name(let n): return [n]
        case .tuple(let items): return items.flatMap(\.names)
        case .namespaceAttribute: return []
        }
    }
}
