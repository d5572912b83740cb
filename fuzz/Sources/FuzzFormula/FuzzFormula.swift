import FuzzSupport
import Kiln

/// `Expression.parse` on arbitrary text (`--task 'fit:EXPR'`).
///
/// Properties, for every formula that parses:
/// - it has at least one variable, and evaluates without trapping (at a few points, when it has at most 64
///   variables: more would be a task too wide to build, which `kiln train` must refuse before sampling);
/// - printed back fully parenthesized, it parses to the same expression (so the parser's precedence and
///   associativity agree with the tree it builds), unless the printed form is deeper than the nesting
///   limit.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFormula(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    guard let expression = try? Expression.parse(text) else { return 0 }
    let variables = expression.variableCount
    require(variables >= 1, "\(variables) variables")
    if variables <= 64 {
        for point in [0.0, 0.5, -1.0] {
            _ = expression.evaluate([Double](repeating: point, count: variables))
        }
    }
    let printed = parenthesized(expression)
    // Every sign and operation gains a pair of parentheses when printed, so a formula near the nesting
    // limit can print deeper than the parser takes; the round trip holds within the limit.
    if case .failure(let error) = Result(catching: { try Expression.parse(printed) }), "\(error)".contains("levels deep") { return 0 }
    let again = mustSucceed("parsing the printed formula \(printed)") { try Expression.parse(printed) }
    require(again == expression, "'\(text)' printed as '\(printed)' parses to a different expression")
    return 0
}

/// The expression with every operation in parentheses.
func parenthesized(_ expression: Expression) -> String {
    switch expression {
    case let .number(value):
        // The parser reads literals with Double(_:), which gives infinity for one too large (1e999).
        return value.isFinite ? "\(value)" : "1e999"
    case let .variable(index):
        return "x\(index + 1)"
    case let .negate(inner):
        return "(-\(parenthesized(inner)))"
    case let .binary(operation, left, right):
        return "(\(parenthesized(left)) \(operation) \(parenthesized(right)))"
    case let .function(name, argument):
        return "\(name)(\(parenthesized(argument)))"
    }
}
