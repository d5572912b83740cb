import Foundation

/// A formula in `x1, x2, …` for function-fitting tasks (`--task 'fit:EXPR'`): numbers, `pi`, `+ - * / ^`
/// (`^` binds tightest and groups to the right, so `-x1^2` is `-(x1^2)`), parentheses and the functions
/// `sin cos tan exp log sqrt abs tanh`.
///
/// A formula may use the variables `x1` to `x1000` and be at most ``maximumDepth`` levels deep: evaluating,
/// comparing and freeing a formula recurse through its tree, so a deeper one (20,000 nested parentheses)
/// would overflow the stack instead of giving an error.
public indirect enum Expression: Equatable, Sendable {
    case number(Double)
    /// `x1` is variable 0.
    case variable(Int)
    case negate(Expression)
    case binary(Character, Expression, Expression)
    case function(String, Expression)

    public static let functions = ["sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh"]

    /// The deepest formula ``parse(_:)`` accepts: each parenthesis, function call, sign and power adds a
    /// level, and so does each operation of a chain such as `x1 + x2 + x3` (500 levels take well under
    /// 1 MB of stack in a debug build; formulas people write nest a few levels).
    public static let maximumDepth = 500

    /// The most variables a formula may use (`x1` … `x1000`): each is an input column of every sample.
    public static let maximumVariables = 1000

    /// Parses a formula.
    ///
    /// - Throws: ``TaskError`` naming the position and what was expected.
    public static func parse(_ text: String) throws(TaskError) -> Expression {
        var parser = Parser(text: Array(text))
        let node = try parser.expression()
        parser.skipSpaces()
        guard parser.position == parser.text.count else { throw parser.error("unexpected '\(parser.text[parser.position])'") }
        return node.expression
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

    /// A parsed subformula and the height of its tree (a leaf is 1).
    private struct Node {
        var expression: Expression
        var height: Int
    }

    /// A recursive-descent parser that counts how deep it is, so that no input can overflow the stack.
    private struct Parser {
        let text: [Character]
        var position = 0
        /// Signs, powers and parentheses the parser is inside of now.
        var nesting = 0

        func error(_ message: String) -> TaskError {
            let shown = text.count > 60 ? String(text.prefix(60)) + "…" : String(text)
            return TaskError("cannot read the formula '\(shown)' at position \(position + 1): \(message); use x1, x2, …, numbers, pi, + - * / ^, parentheses and \(Expression.functions.joined(separator: " "))")
        }

        var tooDeep: TaskError {
            error("it is more than \(Expression.maximumDepth) levels deep (parentheses, functions, signs, powers and chained operations); write it with less nesting")
        }

        /// A node over children, checked against the depth limit.
        func node(_ expression: Expression, over children: Node...) throws(TaskError) -> Node {
            let height = (children.map(\.height).max() ?? 0) + 1
            guard height <= Expression.maximumDepth else { throw tooDeep }
            return Node(expression: expression, height: height)
        }

        mutating func skipSpaces() {
            while position < text.count, text[position] == " " { position += 1 }
        }

        mutating func peek() -> Character? {
            skipSpaces()
            return position < text.count ? text[position] : nil
        }

        mutating func expression() throws(TaskError) -> Node {
            var result = try term()
            while let op = peek(), op == "+" || op == "-" {
                position += 1
                let right = try term()
                result = try node(.binary(op, result.expression, right.expression), over: result, right)
            }
            return result
        }

        mutating func term() throws(TaskError) -> Node {
            var result = try unary()
            while let op = peek(), op == "*" || op == "/" {
                position += 1
                let right = try unary()
                result = try node(.binary(op, result.expression, right.expression), over: result, right)
            }
            return result
        }

        /// Every way of nesting passes through here (a sign, a power's exponent, a parenthesis or a function's
        /// argument), so the nesting limit is checked here, before recursing further.
        mutating func unary() throws(TaskError) -> Node {
            nesting += 1
            defer { nesting -= 1 }
            guard nesting <= Expression.maximumDepth else { throw tooDeep }
            if let sign = peek(), sign == "-" || sign == "+" {
                position += 1
                let inner = try unary()
                return sign == "-" ? try node(.negate(inner.expression), over: inner) : inner
            }
            return try power()
        }

        mutating func power() throws(TaskError) -> Node {
            let base = try primary()
            if peek() == "^" {
                position += 1
                let exponent = try unary()
                return try node(.binary("^", base.expression, exponent.expression), over: base, exponent)
            }
            return base
        }

        mutating func primary() throws(TaskError) -> Node {
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
                guard let value = Double(String(text[start..<position])), value.isFinite else {
                    throw error("'\(String(text[start..<position]).prefix(40))' is not a finite number")
                }
                return Node(expression: .number(value), height: 1)
            }
            if next.isLetter {
                let start = position
                while position < text.count, text[position].isLetter || text[position].isNumber || text[position] == "_" { position += 1 }
                let name = String(text[start..<position])
                if name == "pi" { return Node(expression: .number(Double.pi), height: 1) }
                if name.hasPrefix("x"), name.dropFirst().allSatisfy(\.isASCII), let index = Int(name.dropFirst()), index >= 1 {
                    guard index <= Expression.maximumVariables else {
                        position = start
                        throw error("\(name.prefix(40)) is beyond x\(Expression.maximumVariables), the last variable a formula may use")
                    }
                    return Node(expression: .variable(index - 1), height: 1)
                }
                if Expression.functions.contains(name) {
                    guard peek() == "(" else { throw error("expected '(' after \(name)") }
                    position += 1
                    let argument = try expression()
                    guard peek() == ")" else { throw error("expected ')'") }
                    position += 1
                    return try node(.function(name, argument.expression), over: argument)
                }
                position = start
                throw error("unknown name '\(name.prefix(40))'")
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
                // Targets are float32 on the device: a value beyond its range (exp(100)) is not finite there.
                guard Float(y).isFinite else {
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
