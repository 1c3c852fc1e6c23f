// The syntax tree of a parsed Jinja template: statements (JinjaNode) and expressions
// (JinjaExpr), shaped after jinja2's nodes.py but limited to what lorad's subset renders.
// Every node keeps the source location it came from, so render errors can point at it.

/// A literal in the source. (Kept apart from the runtime JinjaValue so the tree is plainly
/// Sendable and can live in a shared ChatTemplate.)
enum JinjaConstant: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
}

struct JinjaArguments: Sendable {
    var positional: [JinjaExpr] = []
    var keyword: [(name: String, value: JinjaExpr)] = []

    var isEmpty: Bool { positional.isEmpty && keyword.isEmpty }
}

enum JinjaBinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//"
    case modulo = "%", power = "**"
}

enum JinjaCompareOperator: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">"
    case greaterOrEqual = ">=", isIn = "in", notIn = "not in"
}

struct JinjaExpr: Sendable {
    indirect enum Kind: Sendable {
        case constant(JinjaConstant)
        case name(String)
        case list([JinjaExpr])
        case tuple([JinjaExpr])
        case dict([(key: JinjaExpr, value: JinjaExpr)])
        /// `x.name`
        case attribute(JinjaExpr, String)
        /// `x[i]`; the index may be a `.slice`.
        case item(JinjaExpr, JinjaExpr)
        /// `a:b:c` inside brackets; nil parts were omitted.
        case slice(start: JinjaExpr?, stop: JinjaExpr?, step: JinjaExpr?)
        case call(JinjaExpr, JinjaArguments)
        /// `value | name(args)`; value is nil only for `{% set x | filter %}` blocks.
        case filter(JinjaExpr?, name: String, JinjaArguments)
        /// `value is name(args)`
        case test(JinjaExpr, name: String, JinjaArguments)
        case not(JinjaExpr)
        case negate(JinjaExpr)
        case unaryPlus(JinjaExpr)
        case binary(JinjaBinaryOperator, JinjaExpr, JinjaExpr)
        /// `a ~ b ~ c`
        case concat([JinjaExpr])
        /// Python-style chained comparison `a < b < c`.
        case compare(JinjaExpr, [(op: JinjaCompareOperator, operand: JinjaExpr)])
        case and(JinjaExpr, JinjaExpr)
        case or(JinjaExpr, JinjaExpr)
        /// `then if test else otherwise`; without `else` the result is undefined.
        case conditional(test: JinjaExpr, then: JinjaExpr, otherwise: JinjaExpr?)
    }

    var kind: Kind
    var at: TemplateLocation
}

/// The left side of `{% set %}` or of a for loop.
indirect enum JinjaTarget: Sendable {
    case name(String)
    case tuple([JinjaTarget])
    /// `ns.attr`, assignable only on a namespace() object.
    case namespaceAttribute(namespace: String, attribute: String)
}

struct JinjaForLoop: Sendable {
    var target: JinjaTarget
    var iterable: JinjaExpr
    /// `{% for x in xs if cond %}`: filters items before the loop counts them.
    var condition: JinjaExpr?
    var body: [JinjaNode]
    /// Rendered when there were no items.
    var otherwise: [JinjaNode]
    var at: TemplateLocation
}

indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr)
    case ifChain(branches: [(test: JinjaExpr, body: [JinjaNode])], otherwise: [JinjaNode])
    case forLoop(JinjaForLoop)
    case set(JinjaTarget, JinjaExpr, at: TemplateLocation)
    /// `{% set x %}...{% endset %}`, optionally `{% set x | filter %}`.
    case setBlock(JinjaTarget, filter: JinjaExpr?, body: [JinjaNode], at: TemplateLocation)
    /// `{% break %}` / `{% continue %}` (jinja2.ext.loopcontrols, which transformers enables).
    case loopControl(isBreak: Bool, at: TemplateLocation)
    /// `{% generation %}...{% endgeneration %}` (transformers' AssistantTracker): renders its body.
    case generation([JinjaNode])
}
