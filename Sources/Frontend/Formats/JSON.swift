import Foundation

/// A JSON value, for training logs (JSON Lines), run manifests and file headers.
///
/// Discussion: `serialized()` writes object keys in sorted order, so the same
/// value always produces the same text, and writes numbers without loss: a
/// `Double` in the shortest form that reads back to the same value, an `Int`
/// exactly. JSON has no NaN or infinity, so non-finite doubles are written as
/// `null`. `parse(_:file:)` reads JSON text back; integers without a fraction or
/// exponent that fit in `Int` become `.integer`, other numbers `.number`.
///
/// The literal conformances let a log line be written as
/// `["step": 10, "loss": .number(loss), "phase": "train"]`.
public enum JSONValue: Sendable, Equatable {
    case number(Double)
    case integer(Int)
    case string(String)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    /// The value as compact JSON text with sorted object keys.
    ///
    /// - Returns: JSON text, for example `{"loss":0.25,"step":3}`.
    public func serialized() -> String {
        var text = ""
        appendSerialized(to: &text)
        return text
    }

    /// Appends the JSON text of this value.
    ///
    /// - Parameter text: The text to extend.
    func appendSerialized(to text: inout String) {
        switch self {
        case .number(let value):
            text += value.isFinite ? value.description : "null"
        case .integer(let value):
            text += String(value)
        case .string(let value):
            formatsAppendJSONString(value, to: &text)
        case .bool(let value):
            text += value ? "true" : "false"
        case .null:
            text += "null"
        case .array(let elements):
            text += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { text += "," }
                element.appendSerialized(to: &text)
            }
            text += "]"
        case .object(let members):
            text += "{"
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { text += "," }
                formatsAppendJSONString(key, to: &text)
                text += ":"
                members[key]?.appendSerialized(to: &text)
            }
            text += "}"
        }
    }

    /// Parses JSON text.
    ///
    /// - Parameters:
    ///   - text: One JSON value, optionally surrounded by whitespace.
    ///   - file: The path or label to name in errors.
    /// - Returns: The parsed value.
    /// - Throws: `FormatError` saying at which byte the text stops being valid JSON.
    public static func parse(_ text: String, file: String) throws(FormatError) -> JSONValue {
        try parse(bytes: Array(text.utf8), file: file)
    }

    /// Parses JSON from UTF-8 bytes.
    ///
    /// Discussion: Objects with a repeated key are rejected, since which value
    /// wins is ambiguous. Nesting deeper than 512 levels is rejected.
    ///
    /// - Parameters:
    ///   - bytes: UTF-8 encoded JSON text.
    ///   - file: The path or label to name in errors.
    /// - Returns: The parsed value.
    /// - Throws: `FormatError` saying at which byte the text stops being valid JSON.
    public static func parse(bytes: [UInt8], file: String) throws(FormatError) -> JSONValue {
        let result = bytes.withUnsafeBufferPointer { buffer -> Result<JSONValue, FormatsJSONSyntaxError> in
            var parser = FormatsJSONParser(bytes: buffer)
            do throws(FormatsJSONSyntaxError) {
                return .success(try parser.parseDocument())
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let value):
            return value
        case .failure(let error):
            throw FormatError(
                file: file,
                message: "invalid JSON at byte \(error.offset): \(error.reason); fix or regenerate the file"
            )
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    /// Creates `.string` from a string literal.
    public init(stringLiteral value: String) { self = .string(value) }
    /// Creates `.integer` from an integer literal.
    public init(integerLiteral value: Int) { self = .integer(value) }
    /// Creates `.number` from a floating-point literal.
    public init(floatLiteral value: Double) { self = .number(value) }
    /// Creates `.bool` from `true` or `false`.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// Creates `.array` from an array literal.
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Creates `.object` from a dictionary literal; a repeated key keeps its last value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    /// Creates `.null` from `nil`.
    public init(nilLiteral: ()) { self = .null }
}

/// Appends a string as a quoted JSON string literal.
///
/// Discussion: Quotes, backslashes and control characters are escaped; other
/// characters, including non-ASCII ones, are written as UTF-8.
///
/// - Parameters:
///   - value: The string to quote.
///   - text: The text to extend.
func formatsAppendJSONString(_ value: String, to text: inout String) {
    text += "\""
    var plainStart = value.unicodeScalars.startIndex
    var index = plainStart
    let scalars = value.unicodeScalars
    while index < scalars.endIndex {
        let scalar = scalars[index]
        let escape: String?
        switch scalar {
        case "\"": escape = "\\\""
        case "\\": escape = "\\\\"
        case "\n": escape = "\\n"
        case "\r": escape = "\\r"
        case "\t": escape = "\\t"
        case "\u{08}": escape = "\\b"
        case "\u{0C}": escape = "\\f"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                escape = "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                escape = nil
            }
        }
        if let escape {
            text.unicodeScalars.append(contentsOf: scalars[plainStart..<index])
            text += escape
            plainStart = scalars.index(after: index)
        }
        index = scalars.index(after: index)
    }
    text.unicodeScalars.append(contentsOf: scalars[plainStart..<scalars.endIndex])
    text += "\""
}

/// Where and why JSON text is invalid.
private struct FormatsJSONSyntaxError: Error {
    var offset: Int
    var reason: String
}

/// A recursive-descent JSON parser over UTF-8 bytes (RFC 8259).
private struct FormatsJSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var offset = 0
    var depth = 0

    /// Creates a parser over UTF-8 bytes.
    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// An error at the current offset.
    func failure(_ reason: String) -> FormatsJSONSyntaxError {
        FormatsJSONSyntaxError(offset: offset, reason: reason)
    }

    /// Skips spaces, tabs and line breaks.
    mutating func skipWhitespace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case 0x20, 0x09, 0x0A, 0x0D: offset += 1
            default: return
            }
        }
    }

    /// Parses one value that must span the whole input, apart from whitespace.
    mutating func parseDocument() throws(FormatsJSONSyntaxError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        guard offset == bytes.count else { throw failure("unexpected text after the JSON value") }
        return value
    }

    /// Parses the value starting at the current offset.
    mutating func parseValue() throws(FormatsJSONSyntaxError) -> JSONValue {
        guard offset < bytes.count else { throw failure("the text ends where a value was expected") }
        switch bytes[offset] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw failure("unexpected character where a value was expected")
        }
    }

    /// Consumes `true`, `false` or `null`, or throws.
    mutating func expectWord(_ word: StaticString) throws(FormatsJSONSyntaxError) {
        let count = word.utf8CodeUnitCount
        guard offset + count <= bytes.count else { throw failure("the text ends inside a literal") }
        let start = word.utf8Start
        for index in 0..<count where bytes[offset + index] != start[index] {
            throw failure("invalid literal")
        }
        offset += count
    }

    /// Counts one more level of nesting, refusing more than 512.
    mutating func enterContainer() throws(FormatsJSONSyntaxError) {
        depth += 1
        guard depth <= 512 else { throw failure("nesting deeper than 512 levels") }
    }

    /// Parses an object; a repeated key is an error.
    mutating func parseObject() throws(FormatsJSONSyntaxError) -> JSONValue {
        try enterContainer()
        offset += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if offset < bytes.count && bytes[offset] == UInt8(ascii: "}") {
            offset += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else {
                throw failure("expected a quoted key in an object")
            }
            let keyOffset = offset
            let key = try parseString()
            skipWhitespace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else {
                throw failure("expected ':' after an object key")
            }
            offset += 1
            skipWhitespace()
            let value = try parseValue()
            guard members.updateValue(value, forKey: key) == nil else {
                throw FormatsJSONSyntaxError(offset: keyOffset, reason: "the key \"\(key)\" appears twice in one object")
            }
            skipWhitespace()
            guard offset < bytes.count else { throw failure("the text ends inside an object") }
            if bytes[offset] == UInt8(ascii: ",") {
                offset += 1
                continue
            }
            guard bytes[offset] == UInt8(ascii: "}") else { throw failure("expected ',' or '}' in an object") }
            offset += 1
            depth -= 1
            return .object(members)
        }
    }

    /// Parses an array.
    mutating func parseArray() throws(FormatsJSONSyntaxError) -> JSONValue {
        try enterContainer()
        offset += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if offset < bytes.count && bytes[offset] == UInt8(ascii: "]") {
            offset += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            guard offset < bytes.count else { throw failure("the text ends inside an array") }
            if bytes[offset] == UInt8(ascii: ",") {
                offset += 1
                continue
            }
            guard bytes[offset] == UInt8(ascii: "]") else { throw failure("expected ',' or ']' in an array") }
            offset += 1
            depth -= 1
            return .array(elements)
        }
    }

    /// Parses the four hexadecimal digits of a `\u` escape.
    mutating func parseHexQuad() throws(FormatsJSONSyntaxError) -> UInt32 {
        guard offset + 4 <= bytes.count else { throw failure("the text ends inside a \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("invalid hexadecimal digit in a \\u escape")
            }
            value = value << 4 | UInt32(digit)
            offset += 1
        }
        return value
    }

    /// Parses a quoted string, resolving escapes and surrogate pairs.
    mutating func parseString() throws(FormatsJSONSyntaxError) -> String {
        offset += 1
        var collected: [UInt8] = []
        var runStart = offset
        while true {
            guard offset < bytes.count else { throw failure("the text ends inside a string") }
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                collected.append(contentsOf: bytes[runStart..<offset])
                offset += 1
                break
            }
            if byte < 0x20 { throw failure("a control character inside a string must be escaped") }
            if byte != UInt8(ascii: "\\") {
                offset += 1
                continue
            }
            collected.append(contentsOf: bytes[runStart..<offset])
            offset += 1
            guard offset < bytes.count else { throw failure("the text ends inside an escape") }
            let escaped = bytes[offset]
            offset += 1
            switch escaped {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): collected.append(escaped)
            case UInt8(ascii: "b"): collected.append(0x08)
            case UInt8(ascii: "f"): collected.append(0x0C)
            case UInt8(ascii: "n"): collected.append(0x0A)
            case UInt8(ascii: "r"): collected.append(0x0D)
            case UInt8(ascii: "t"): collected.append(0x09)
            case UInt8(ascii: "u"):
                var code = try parseHexQuad()
                if (0xD800..<0xDC00).contains(code) {
                    guard offset + 2 <= bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u")
                    else { throw failure("a high surrogate escape is not followed by a low one") }
                    offset += 2
                    let low = try parseHexQuad()
                    guard (0xDC00..<0xE000).contains(low) else { throw failure("invalid low surrogate escape") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw failure("a lone surrogate escape") }
                collected.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw failure("invalid escape sequence")
            }
            runStart = offset
        }
        guard let text = String(bytes: collected, encoding: .utf8) else {
            throw failure("a string is not valid UTF-8")
        }
        return text
    }

    /// Parses a number: `.integer` when it has no fraction or exponent and fits in `Int`, else `.number`.
    mutating func parseNumber() throws(FormatsJSONSyntaxError) -> JSONValue {
        let start = offset
        var isInteger = true
        if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        func isDigit(_ index: Int) -> Bool {
            index < bytes.count && bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9")
        }
        guard isDigit(offset) else { throw failure("a number needs digits") }
        if bytes[offset] == UInt8(ascii: "0") {
            offset += 1
            if isDigit(offset) { throw failure("a number must not have leading zeros") }
        } else {
            while isDigit(offset) { offset += 1 }
        }
        if offset < bytes.count && bytes[offset] == UInt8(ascii: ".") {
            isInteger = false
            offset += 1
            guard isDigit(offset) else { throw failure("a decimal point must be followed by digits") }
            while isDigit(offset) { offset += 1 }
        }
        if offset < bytes.count && (bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E")) {
            isInteger = false
            offset += 1
            if offset < bytes.count && (bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-")) {
                offset += 1
            }
            guard isDigit(offset) else { throw failure("an exponent needs digits") }
            while isDigit(offset) { offset += 1 }
        }
        let text = String(decoding: bytes[start..<offset], as: UTF8.self)
        if isInteger, let value = Int(text) { return .integer(value) }
        guard let value = Double(text) else { throw failure("invalid number") }
        return .number(value)
    }
}

/// Appends one JSON object per line (JSON Lines), flushing after each line.
///
/// Discussion: Each `write` sends one complete line to the operating system
/// with a single `write` call, so a crash loses at most the line being written
/// and other programs can follow the file while training runs. When appending
/// to a file whose last line was cut off (say, by a crash), a line break is
/// added first so the new lines stay parseable. The writer is safe to share
/// between threads; lines never interleave.
public final class JSONLinesWriter: @unchecked Sendable {
    /// The file being written.
    public let url: URL

    private let handle: FileHandle
    private let lock = NSLock()
    private var isClosed = false

    /// Opens a JSON Lines file for writing.
    ///
    /// - Parameters:
    ///   - url: The file; its folder must exist.
    ///   - append: `true` to add lines after the existing ones (creating the file if
    ///     needed); `false` to start a new, empty file.
    /// - Throws: `FormatError` naming the file when it cannot be created or opened.
    public init(url: URL, append: Bool) throws {
        self.url = url
        let path = url.path
        let manager = FileManager.default
        let exists = manager.fileExists(atPath: path)
        if !exists || !append {
            guard manager.createFile(atPath: path, contents: nil) else {
                throw FormatError(
                    file: path,
                    message: "cannot create the file; check that the folder exists and is writable"
                )
            }
        }
        do {
            handle = try FileHandle(forUpdating: url)
            let end = try handle.seekToEnd()
            if append && end > 0 {
                try handle.seek(toOffset: end - 1)
                let last = try handle.read(upToCount: 1) ?? Data()
                try handle.seekToEnd()
                if last.first != 0x0A {
                    try handle.write(contentsOf: Data([0x0A]))
                }
            }
        } catch {
            throw FormatError(
                file: path,
                message: "cannot open the file for writing (\(formatsOneLine(error.localizedDescription))); check its permissions"
            )
        }
    }

    /// Writes one object as one line.
    ///
    /// - Parameter object: The fields of the line; keys are written sorted.
    /// - Throws: `FormatError` naming the file when the writer is closed or the
    ///   write fails (for example, the disk is full).
    public func write(_ object: [String: JSONValue]) throws {
        var line = JSONValue.object(object).serialized()
        line += "\n"
        lock.lock()
        defer { lock.unlock() }
        guard !isClosed else {
            throw FormatError(file: url.path, message: "the JSON Lines writer was already closed; open a new one to write more")
        }
        do {
            try handle.write(contentsOf: Data(line.utf8))
        } catch {
            throw FormatError(
                file: url.path,
                message: "cannot write a line (\(formatsOneLine(error.localizedDescription))); check free disk space and permissions"
            )
        }
    }

    /// Flushes the file to disk and closes it; later writes throw. Calling it again does nothing.
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        guard !isClosed else { return }
        isClosed = true
        try? handle.synchronize()
        try? handle.close()
    }

    deinit {
        close()
    }
}
