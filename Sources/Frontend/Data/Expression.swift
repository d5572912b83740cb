import Foundation

/// A formula in `x1, x2, …` for function-fitting tasks (`--task 'fit:EXPR'`): numbers, `pi`, `+ - * / ^`
/// (`^` binds tightest and groups to the right, so `-x1^2` is `-(x1^2)`), parentheses and the functions
/// `sin cos tan exp log sqrt abs tanh`.
public indirect enum Expression: Equatable, Sendable {
    case number(Double)
    /// `x1` is variable 0.
    case variable(Int)
    case negate(Expression)
    case binary(Character, Expression, Expression)
    case function(String, Expression)

    public static let functions = ["sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh"]

    /// Parses a formula.
    ///
    /// - Throws: ``TaskError`` naming the position and what was expected.
    public static func parse(_ text: String) throws(TaskError) -> Expression {
        var parser = Parser(text: Array(text))
        let expression = try parser.expression()
        parser.skipSpaces()
        guard parser.position == parser.text.count else { throw parser.error("unexpected '\(parser.text[parser.position])'") }
        return expression
    }

    /// The number of inputs: the largest variable index used (at least 1).
    public var variableCount: Int {
        switch self {
        case .number: 1
        case let .variable(index): index + 1
        case let .negate(inner), let .function(_, inner): inner.variableCount
        case let .binary(_, left, right): max(left.variableCount, right.variableCount)
        }
    }

    /// The value at `inputs` (x1 = inputs[0], …).
    public func evaluate(_ inputs: [Double]) -> Double {
        switch self {
        case let .number(value): return value
        case let .variable(index): return inputs[index]
        case let .negate(inner): return -inner.evaluate(inputs)
        case let .binary(op, left, right):
            let a = left.evaluate(inputs), b = right.evaluate(inputs)
            switch op {
            case "+": return a + b
            case "-": return a - b
            case "*": return a * b
            case "/": return a / b
            default: return Foundation.pow(a, b)
            }
        case let .function(name, inner):
            let value = inner.evaluate(inputs)
            switch name {
            case "sin": return Foundation.sin(value)
            case "cos": return Foundation.cos(value)
            case "tan": return Foundation.tan(value)
            case "exp": return Foundation.exp(value)
            case "log": return Foundation.log(value)
            case "sqrt": return value.squareRoot()
            case "abs": return Swift.abs(value)
            default: return Foundation.tanh(value)
            }
        }
    }

    private struct Parser {
        let text: [Character]
        var position = 0

        func error(_ message: String) -> TaskError {
            TaskError("cannot read the formula '\(String(text))' at position \(position + 1): \(message); use x1, x2, …, numbers, pi, + - * / ^, parentheses and \(Expression.functions.joined(separator: " "))")
        }

        mutating func skipSpaces() {
            while position < text.count, text[position] == " " { position += 1 }
        }

        mutating func peek() -> Character? {
            skipSpaces()
            return position < text.count ? text[position] : nil
        }

        mutating func expression() throws(TaskError) -> Expression {
            var result = try term()
            while let op = peek(), op == "+" || op == "-" {
                position += 1
                result = .binary(op, result, try term())
            }
            return result
        }

        mutating func term() throws(TaskError) -> Expression {
            var result = try unary()
            while let op = peek(), op == "*" || op == "/" {
                position += 1
                result = .binary(op, result, try unary())
            }
            return result
        }

        mutating func unary() throws(TaskError) -> Expression {
            if let sign = peek(), sign == "-" || sign == "+" {
                position += 1
                let inner = try unary()
                return sign == "-" ? .negate(inner) : inner
            }
            return try power()
        }

        mutating func power() throws(TaskError) -> Expression {
            let base = try primary()
            if peek() == "^" {
                position += 1
                return .binary("^", base, try unary())
            }
            return base
        }

        mutating func primary() throws(TaskError) -> Expression {
            guard let next = peek() else { throw error("the formula ends too soon") }
            if next == "(" {
                position += 1
                let inner = try expression()
                guard peek() == ")" else { throw error("expected ')'") }
                position += 1
                return inner
            }
            if next.isNumber || next == "." {
                let start = position
                while position < text.count, text[position].isNumber || text[position] == "." { position += 1 }
                if position < text.count, text[position] == "e" || text[position] == "E" {
                    var look = position + 1
                    if look < text.count, text[look] == "-" || text[look] == "+" { look += 1 }
                    if look < text.count, text[look].isNumber {
                        position = look
                        while position < text.count, text[position].isNumber { position += 1 }
                    }
                }
                guard let value = Double(String(text[start..<position])) else { throw error("'\(String(text[start..<position]))' is not a number") }
                return .number(value)
            }
            if next.isLetter {
                let start = position
                while position < text.count, text[position].isLetter || text[position].isNumber || text[position] == "_" { position += 1 }
                let name = String(text[start..<position])
                if name == "pi" { return .number(Double.pi) }
                if name.hasPrefix("x"), let index = Int(name.dropFirst()), index >= 1 { return .variable(index - 1) }
                if Expression.functions.contains(name) {
                    guard peek() == "(" else { throw error("expected '(' after \(name)") }
                    position += 1
                    let argument = try expression()
                    guard peek() == ")" else { throw error("expected ')'") }
                    position += 1
                    return .function(name, argument)
                }
                position = start
                throw error("unknown name '\(name)'")
            }
            throw error("unexpected '\(next)'")
        }
    }
}

/// Function fitting: inputs uniform in a range (default [-1, 1]) in as many dimensions as the formula
/// has variables, 1,000 training and 1,000 test points from the seed, targets the formula's value.
public enum FunctionFittingTask {
    public static let trainCount = 1000
    public static let testCount = 1000

    /// - Parameters:
    ///   - formula: the text after `fit:`.
    ///   - range: the input range.
    public static func make(formula: String, range: ClosedRange<Double>, seed: UInt64) throws -> ArrayTask {
        let expression = try Expression.parse(formula)
        let dimensions = expression.variableCount
        func sample(_ count: Int, stream: String) throws(TaskError) -> HostBatch {
            var generator = RandomGenerator(seed: seed, stream: stream)
            var inputs = [Float](), targets = [Float]()
            for _ in 0..<count {
                let x = (0..<dimensions).map { _ in range.lowerBound + (range.upperBound - range.lowerBound) * generator.nextUniform() }
                let y = expression.evaluate(x)
                guard y.isFinite else {
                    throw TaskError("the formula '\(formula)' is not finite at \(x.map { String(format: "%.4g", $0) }.joined(separator: ", ")); choose another --range")
                }
                inputs += x.map(Float.init)
                targets.append(Float(y))
            }
            return HostBatch(inputs: inputs, rows: count, features: dimensions, targets: targets)
        }
        return ArrayTask(name: "fit:\(formula)", train: try sample(trainCount, stream: "fit/train"), test: try sample(testCount, stream: "fit/test"),
                         targetKind: .values(1), seed: seed)
    }
}
